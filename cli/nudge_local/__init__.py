"""The local harness: Nudge's stack on moto, built from template.yaml, with the real handlers.

For `nudge demo`, the tests and the bench; never deployed, and not needed by the operator CLI
against a real account. moto comes with the `demo` extra (``pip install 'nudge[demo]'``).
"""
