"""Drive `merchgen serve` with RunPod's own Python client (runpod on PyPI), the way a RunPod
user would: run_sync, run + status + output, health, a failed job, cancel, purge_queue, and a
wrong key. Run by tests/serve_python.rs; prints a JSON summary and exits non-zero on failure.

Environment: MERCHGEN_TEST_BASE (http://127.0.0.1:PORT/v2), MERCHGEN_TEST_API_KEY.
"""

import json
import os
import sys
import time

import runpod

runpod.api_key = os.environ["MERCHGEN_TEST_API_KEY"]
runpod.endpoint_url_base = os.environ["MERCHGEN_TEST_BASE"]

JOB = {"prompt": "a corgi astronaut", "width": 64, "height": 64, "num_inference_steps": 1, "seed": 7}
SLOW = {"prompt": "slow", "width": 64, "height": 64, "num_inference_steps": 50}


def wait_status(job, wanted, limit=60):
    """Poll Job.status() until it is one of `wanted`."""
    end = time.time() + limit
    while time.time() < end:
        status = job.status()
        if status in wanted:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job.job_id} never reached {wanted}")


def main():
    endpoint = runpod.Endpoint("merchgen-local")
    summary = {}

    output = endpoint.run_sync({"input": JOB}, timeout=120)
    assert output["status"] == "succeeded", output
    assert output["images"][0]["seed"] == 7, output
    summary["run_sync"] = output["status"]

    job = endpoint.run(JOB)  # the client wraps it into {"input": ...}
    first = job.status()
    assert first in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED"), first
    output = job.output(timeout=120)
    assert output["images"][0]["width"] == 64, output
    assert job.status() == "COMPLETED"
    summary["run"] = {"first": first, "final": job.status(), "id": job.job_id}

    bad = endpoint.run({"prompt": "x", "width": 100})
    summary["failed"] = wait_status(bad, ("FAILED",))

    slow = endpoint.run(SLOW)
    wait_status(slow, ("IN_PROGRESS",))
    waiting = endpoint.run(JOB)
    purged = endpoint.purge_queue()
    assert purged == {"removed": 1, "status": "completed"}, purged
    cancelled = slow.cancel()
    assert cancelled["status"] == "CANCELLED", cancelled
    summary["cancel"] = cancelled["status"]
    summary["purged"] = purged["removed"]
    summary["waiting_after_purge"] = waiting.status()

    health = endpoint.health()
    assert health["jobs"]["completed"] >= 2, health
    summary["health"] = health["jobs"]

    try:
        runpod.Endpoint("merchgen-local", api_key="wrong-key").health()
        raise AssertionError("a wrong key was accepted")
    except RuntimeError as err:
        summary["wrong_key"] = str(err)

    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
