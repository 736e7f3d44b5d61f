"""The operator tooling: the `nudge` CLI, the demo, the moto stack and the local pipeline.

Never deployed: the Lambda layer holds only the `nudge` package.
"""
