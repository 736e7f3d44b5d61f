"""The operator tooling: the `nudge` CLI (plan, schedule, report, calls, import, audit, demo).

Never deployed: the Lambda layer holds only the `nudge` package. The demo's moto harness is the
`nudge_local` package, installed with the `demo` extra.
"""
