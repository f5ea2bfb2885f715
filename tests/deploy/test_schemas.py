"""Every rendered object validates against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: an unknown field is an error, as `kubectl apply --validate=strict` would say)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.deploy.rendered import APPLIED, render

# The oldest Kubernetes the manifests are meant for (sidecar fields, policy/v1 PDBs) and the newest
# the package ships.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kustomization", APPLIED)
def test_objects_validate(kustomization: str, version: str) -> None:
    for obj in render(kustomization):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            raise AssertionError(
                f"{kustomization}: {obj['kind']} {obj['metadata']['name']}: {err.message}"
            ) from None


def test_the_validator_refuses_a_wrong_object() -> None:
    """The check above can fail: a misspelt field and a wrong type are refused."""
    deployment = next(o for o in render("overlays/embedded") if o["kind"] == "Deployment")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "one"
    for bad in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)
