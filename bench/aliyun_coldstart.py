"""The send function's cold start with SmsGateway=aliyun against the default (sns).

``python -m bench.aliyun_coldstart [--runs 7] [--layer DIR]``

Each run is a fresh interpreter that imports the send handler (``functions/send/app.py``, as
Lambda does) and then builds its app the way the first invocation does (``bootstrap.build_send_app``:
settings, boto3 clients, the gateway). With aliyun that build also reads the AccessKey secret
(Powertools Parameters; the Secrets Manager call itself is replaced by its answer, since nothing
here may reach AWS, so its round trip, some tens of ms in a region, is not counted), imports
Alibaba Cloud's SDK and makes its client. ``--layer``: the built aliyun layer's ``python/``
directory, put first on the path as Lambda does (else the venv's copy of the SDK is used).

Prints the median wall and CPU seconds of the import and of the first build, per gateway.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    "ORDERS_TABLE": "orders",
    "ORDERS_STATUS_INDEX": "status-created_at",
    "LEDGER_TABLE": "ledger",
    "LEDGER_DAY_INDEX": "sent_day-last_sent_at",
    "IDEMPOTENCY_TABLE": "idempotency",
    "SEND_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/send",
    "PAUSED_PARAMETER": "/nudge/paused",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Nudge",
    "POWERTOOLS_SERVICE_NAME": "nudge",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
ALIYUN = {
    "SMS_GATEWAY": "aliyun",
    "ALIYUN_SIGN_NAME": "Nudge Shop",
    "ALIYUN_TEMPLATE_CODES": "1=SMS_111,2=SMS_222",
    "ALIYUN_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aliyun",
}
CHILD = """
import json, os, sys, time
w0, c0 = time.perf_counter(), time.process_time()
import app
w1, c1 = time.perf_counter(), time.process_time()
from aws_lambda_powertools.utilities import parameters
keys = json.dumps({"access_key_id": "LTAI-bench", "access_key_secret": "bench"})
parameters.get_secret = lambda name, **kwargs: keys  # the Secrets Manager call's answer
from nudge import bootstrap
from nudge.settings import load_settings
built = bootstrap.build_send_app(load_settings(os.environ), clients=bootstrap.session_clients())
w2, c2 = time.perf_counter(), time.process_time()
sdk = any(m.startswith("alibabacloud_dysmsapi20170525") for m in sys.modules)
print(json.dumps({"import": [w1 - w0, c1 - c0], "build": [w2 - w1, c2 - c1],
                  "gateway": type(built.sender.sms).__name__, "sdk_loaded": sdk}))
"""


def measure(gateway: str, runs: int, layer: Path | None) -> dict:
    path = [str(ROOT / "functions" / "send"), str(ROOT / "layers" / "nudge")]
    if gateway == "aliyun" and layer is not None:
        path.insert(1, str(layer))
    env = {
        **os.environ,
        **ENV,
        **(ALIYUN if gateway == "aliyun" else {}),
        "PYTHONPATH": os.pathsep.join(path),
    }
    if gateway != "aliyun":
        env.pop("SMS_GATEWAY", None)
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
        )
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))

    def median(step: str, i: int) -> float:
        return statistics.median(s[step][i] for s in samples)

    return {
        "gateway": samples[0]["gateway"],
        "sdk_loaded": samples[0]["sdk_loaded"],
        "import_wall": median("import", 0),
        "import_cpu": median("import", 1),
        "build_wall": median("build", 0),
        "build_cpu": median("build", 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--layer", type=Path, default=None, help="the built aliyun layer's python/ directory")
    args = parser.parse_args(argv)
    print(f"{'gateway':8} {'import wall/cpu s':>18} {'first build wall/cpu s':>24}  sdk loaded")
    for gateway in ("sns", "aliyun"):
        r = measure(gateway, args.runs, args.layer)
        print(
            f"{gateway:8} {r['import_wall']:8.3f} / {r['import_cpu']:.3f} "
            f"{r['build_wall']:12.3f} / {r['build_cpu']:.3f}    {r['sdk_loaded']} ({r['gateway']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
