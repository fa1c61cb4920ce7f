"""The Kubeflow Python SDK (kubeflow-training, pinned in requirements.txt) against tfjob-operator.

Run by tests/sdk.rs with KUBECONFIG and TFJOB_NAMESPACE set, on a control plane where the
operator and the simulated kubelet run (its pods exit 0 after a second unless annotated).
Each step prints what it checked; the first failure raises and exits non-zero.
"""

import os
import sys
import time

from kubeflow.training import TrainingClient, models
from kubernetes import client as k8s

NAMESPACE = os.environ["TFJOB_NAMESPACE"]
FOREVER = {"sim.tfjob-operator.dev/run-forever": "true"}


def check(what, ok, detail=""):
    if not ok:
        raise AssertionError(f"{what}: {detail}")
    print(f"ok  {what}", flush=True)


def eventually(condition, seconds=20):
    """Whether `condition()` holds within `seconds` (the operator acts a moment after a create)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def seed_job(name, annotations=None):
    """The seed's shape (1 PS, 2 Workers) as the SDK's own models."""

    def replica(replicas):
        return models.KubeflowOrgV1ReplicaSpec(
            replicas=replicas,
            restart_policy="Never",
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(annotations=annotations),
                spec=k8s.V1PodSpec(
                    containers=[k8s.V1Container(name="tensorflow", image="tf")]
                ),
            ),
        )

    return models.KubeflowOrgV1TFJob(
        api_version="kubeflow.org/v1",
        kind="TFJob",
        metadata=k8s.V1ObjectMeta(name=name, namespace=NAMESPACE),
        spec=models.KubeflowOrgV1TFJobSpec(
            # The SDK's model refuses a spec without one (its own template sets it too).
            run_policy=models.KubeflowOrgV1RunPolicy(clean_pod_policy=None),
            tf_replica_specs={"PS": replica(1), "Worker": replica(2)},
        ),
    )


def main():
    tc = TrainingClient(
        config_file=os.environ["KUBECONFIG"], namespace=NAMESPACE, job_kind="TFJob"
    )

    # A job from the SDK's models, and one from its own template (name + image + counts).
    tc.create_job(job=seed_job("sdk-seed"))
    tc.create_job(
        name="sdk-template", base_image="tf", num_workers=2, num_ps_replicas=1
    )
    tc.create_job(job=seed_job("sdk-forever", FOREVER))
    check("create_job: a model and the SDK's template", True)

    # One as kubectl would send it: the seed's YAML, no runPolicy (the SDK's model wants one).
    seed = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": "kubectl-seed"},
        "spec": {
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": 1,
                    "template": {
                        "spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}
                    },
                }
            }
        },
    }
    tc.custom_api.create_namespaced_custom_object(
        "kubeflow.org", "v1", NAMESPACE, "tfjobs", seed
    )

    names = sorted(j.metadata.name for j in tc.list_jobs())
    check(
        "list_jobs",
        names == ["kubectl-seed", "sdk-forever", "sdk-seed", "sdk-template"],
        names,
    )
    check("get_job of a job without runPolicy", tc.get_job("kubectl-seed").metadata.name == "kubectl-seed")

    job = tc.get_job("sdk-seed")
    check("get_job returns the typed model", isinstance(job, models.KubeflowOrgV1TFJob))
    check("is_job_created", eventually(lambda: tc.is_job_created("sdk-seed")))

    for name in ["sdk-seed", "sdk-template"]:
        done = tc.wait_for_job_conditions(
            name, expected_conditions={"Succeeded"}, wait_timeout=60, polling_interval=1
        )
        check(f"wait_for_job_conditions({name}, Succeeded)", tc.is_job_succeeded(name))
        types = [c.type for c in done.status.conditions]
        check(
            f"{name}: conditions from Created to Succeeded",
            types[0] == "Created" and types[-1] == "Succeeded",
            types,
        )
        workers = done.status.replica_statuses["Worker"]
        check(f"{name}: Worker replica status", workers.succeeded == 2, workers)

    tc.wait_for_job_conditions(
        "sdk-forever", expected_conditions={"Running"}, wait_timeout=60, polling_interval=1
    )
    check("is_job_running", tc.is_job_running("sdk-forever"))
    check("is_job_failed is false", not tc.is_job_failed("sdk-forever"))
    pods = sorted(tc.get_job_pod_names("sdk-forever"))
    check(
        "get_job_pod_names",
        pods == ["sdk-forever-ps-0", "sdk-forever-worker-0", "sdk-forever-worker-1"],
        pods,
    )
    master = tc.get_job_pod_names("sdk-forever", is_master=True)
    check("get_job_pod_names(is_master=True): worker 0", master == ["sdk-forever-worker-0"], master)
    ps = tc.get_job_pod_names("sdk-forever", replica_type="ps")
    check("get_job_pod_names(replica_type=ps)", ps == ["sdk-forever-ps-0"], ps)
    one = tc.get_job_pod_names("sdk-forever", replica_type="worker", replica_index=1)
    check("get_job_pod_names(worker, index 1)", one == ["sdk-forever-worker-1"], one)

    # Logs, as the simulated kubelet serves them: each container prints its TF_CONFIG.
    logs, _ = tc.get_job_logs("sdk-forever")
    check(
        "get_job_logs: the master pod's TF_CONFIG",
        list(logs) == ["sdk-forever-worker-0"]
        and '"task":{"type":"worker","index":0}' in logs["sdk-forever-worker-0"],
        logs,
    )
    logs, _ = tc.get_job_logs("sdk-forever", is_master=False, replica_type="ps")
    check("get_job_logs(replica_type=ps)", list(logs) == ["sdk-forever-ps-0"], logs)

    for name in names:
        tc.delete_job(name)
    check("delete_job", eventually(lambda: tc.list_jobs() == []), tc.list_jobs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
