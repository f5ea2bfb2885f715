# ruff: noqa: E501 - a table of the guide's messages, kept verbatim on one line each
"""The guide's event wording, verbatim (SEED-SPEC §3.2-3.6; tables 1-52 to 1-55).

``render("E36", "RUNNING", "ALARM")`` fills the ``%s`` placeholders in order and refuses a wrong
number of values, so a message can never leave a placeholder showing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    kind: str  # "service" or "pod"
    type: str
    reason: str
    text: str

    def render(self, *values: object) -> str:
        holes = self.text.count("%s")
        if len(values) != holes:
            raise ValueError(f"template {self.id} takes {holes} value(s), got {len(values)}")
        return self.text % tuple(str(v) for v in values)


_SERVICE_EXCEPTIONS = {
    "E01": "Service deployment failed, %s.",
    "E02": "Service deployment timed out. Error: The deployment duration of the service exceeds %s minutes. "
    "The deployment failed.",
    "E03": "Service deletion failed. Current status: %s, %s.",
    "E04": "Batch service deletion failed, %s.",
    "E05": "Service deletion timed out. Error message: Service deletion time exceeded %s minute. The deletion failed.",
    "E06": "Service asynchronous task cancellation failed, %s.",
    "E07": "Creation of deployment [%s] failed, %s.",
    "E08": "Update of deployment [%s] failed, %s.",
    "E09": "The Volcano plugin for resource pool [%s] is unavailable.",
    "E10": "Deletion of deployment [%s] failed, %s.",
    "E11": "Stopping of deployment [%s] failed, %s.",
    "E12": "Deletion of secret [%s] failed, %s.",
    "E13": "Verification of secret [%s] failed, %s.",
    "E14": "Service configuration delivery failed, %s.",
    "E15": "Binding API key: %s failed, %s.",
    "E16": "Unbinding API key: %s failed, %s.",
    "E17": "Service startup failed, %s; status transitioned from %s to %s.",
    "E18": "Service stop failed, %s.",
    "E19": "Service interruption failed. Current service status: %s, %s.",
    "E20": "Unable to release quota.",
    "E21": "Interruption of deployment [%s] failed, %s; status transitioned from %s to %s.",
    "E22": "Interruption of deployment [%s] failed. Current deployment status: [%s], %s.",
    "E23": "Stopping of deployment [%s] failed, %s; status transitioned from %s to %s.",
    "E24": "Deletion of deployment [%s] failed, %s; status transitioned from %s to %s.",
    "E25": "Service update failed; the service will roll back, %s.",
    "E26": "Service update timed out. Error message: Service deployment time exceeded %s minutes; "
    "the service is rolled back.",
    "E27": "Service upgrade configuration failed, %s.",
    "E28": "Update of deployment [%s] failed; the deployment will roll back, %s.",
    "E29": "The service fails to be rolled back. Current service status: %s, %s.",
    "E30": "Service [%s] rollback timed out. Error message: %s.",
    "E31": "Upgrade rollback of deployment [%s] failed. Current status: [%s].",
    "E32": "Upgrade rollback of deployment [%s] failed; status transitioned from %s to %s.",
    "E33": "Rollback of deployment [%s] timed out; version: [%s].",
    "E34": "Service status transitioned from %s to %s; anomalous deployment [%s]; error message: %s.",
    "E35": "Status of deployment [%s] transitioned from %s to %s; error message: %s.",
    "E36": "Service status transitioned from %s to %s.",
    "E37": "Service detected a chip fault in resource pool [%s]: %s.",
    "E38": "Service detected a switch fault in resource pool [%s]: %s.",
    "E39": "Service detected a node fault in resource pool [%s]: %s.",
    "E40": "Service detected a network service anomaly event: %s.",
    "E41": "Failed to submit the task for deleting instance [%s]. Reason: %s.",
    "E42": "Failed to delete instance [%s]. Try again later or contact service O&M personnel for a resolution.",
    "E43": "Failed to delete instance [%s]. Reason: Retries reached the maximum number of attempts (%s).",
    "E44": "Failed to delete instance [%s]. Only 1 instance remaining currently.",
    "E45": "Creation of deployment [%s] failed, %s; status transitioned from %s to %s.",
    "E46": "Startup of deployment [%s] failed, %s; status transitioned from %s to %s.",
    "E47": "Manual scaling of deployment [%s] failed. Error message: %s.",
    "E48": "An anomaly exists in the service components that deployment [%s] depends on. Rescheduling is in "
    "progress; the current service status may be inaccurate.",
}
_SERVICE_WARNINGS = {
    "W01": "Deployment [%s] has no [Health Check > Startup Probe] configured, which will prevent the model loading "
    "process from being monitored. The service may display a Running status but fail to handle predictions "
    "because the model is still loading.",
    "W02": "Checking the health status of some pods failed during the deployment [%s]. "
    "(Check the pod events for the cause.)",
    "W03": "Failed to pull the pod image in deployment [%s]. (Check the pod events for the cause.)",
    "W04": "Failed to start the pod container in deployment [%s]. (Check the pod events for the cause.)",
    "W05": "Pod scheduling failed in deployment [%s]. (Check the pod events for the cause.)",
    "W06": "Pod mounting failed during the deployment [%s]. Retrying... (Check the pod events for the cause.)",
    "W07": "Model configuration loading failed for pods in service deployment unit [%s]. Retrying... Details: %s",
}
# Normal service events: the guide's three examples (Figure 1-84).
_SERVICE_NORMAL = {
    "N01": ("ServiceAutoStop", "Service will auto-stop in %s hour(s)."),
    "N02": ("ServiceStatusChanged", "Service status change from %s to %s."),
    "N03": (
        "DeploymentCreated",
        "Deployment [%s] created. Available instances: %s, target instances: %s, status change from %s to %s.",
    ),
}
# Pod events (T1-55): reason → (type, description).
POD_REASONS = {
    "SuccessfulCreate": ("Normal", "The container is created."),
    "Started": ("Normal", "The container is started."),
    "Scheduled": ("Normal", "The pod is scheduled to the node."),
    "SuccessfulMountVolume": ("Normal", "The storage volume is mounted."),
    "Pulling": ("Normal", "The image is being pulled."),
    "Pulled": ("Normal", "The image is pulled."),
    "Healthy": ("Normal", "The container is in the healthy state."),
    "Killing": ("Normal", "The container is being terminated."),
    "BackOffStart": ("Alarm", "The container fails to start."),
    "CrashLoopBackOff": ("Alarm", "The container is repeatedly restarted and then breaks down."),
    "FailedPullImage": ("Alarm", "Pulling the image failed."),
    "BackOffPullImage": ("Alarm", "The image fails to be pulled again."),
    "Unhealthy": ("Alarm", "The health check fails."),
    "FailedScheduling": ("Alarm", "The pod cannot be scheduled to the node temporarily."),
    "FailedMount": ("Alarm", "The storage volume fails to be mounted."),
    "InferInitContainerFailed": ("Alarm", "Infer init container checked failed, errcode: %s, errmsg: %s."),
}

TEMPLATES: dict[str, Template] = {
    **{k: Template(k, "service", "Exception", k, v) for k, v in _SERVICE_EXCEPTIONS.items()},
    **{k: Template(k, "service", "Warning", k, v) for k, v in _SERVICE_WARNINGS.items()},
    **{k: Template(k, "service", "Normal", reason, v) for k, (reason, v) in _SERVICE_NORMAL.items()},
    **{reason: Template(reason, "pod", t, reason, text) for reason, (t, text) in POD_REASONS.items()},
}


def render(template_id: str, *values: object) -> str:
    """The guide's message for ``template_id`` with its placeholders filled."""
    try:
        template = TEMPLATES[template_id]
    except KeyError:
        raise ValueError(f"unknown event template {template_id!r}") from None
    return template.render(*values)
