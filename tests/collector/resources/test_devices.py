"""GPU (dcgm-exporter) and NPU (npu-exporter, npu-smi info) readers against captured real outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.resources.devices import DeviceReading, combine
from collector.resources.gpu import NvmlReader, NvmlUnavailableError, parse_dcgm
from collector.resources.npu import parse_npu_exporter, parse_npu_smi_info


def test_dcgm_t4(testdata: Path) -> None:
    [t4] = parse_dcgm((testdata / "gpu/dcgm/dcgm-exporter_tesla-t4_460.106.00.prom").read_text())
    assert (t4.util_pct, t4.mem_used_mb, t4.mem_total_mb) == (0.0, 0.0, 15109.0)


def test_dcgm_picks_this_pods_mig_instance(testdata: Path) -> None:
    text = (testdata / "gpu/dcgm/dcgm-exporter_mixed-ada-a30mig_triton-pod_pr736.prom").read_text()
    [mine] = parse_dcgm(text, pod="triton-server-f7cb5d77-95xcf")
    assert mine.device.endswith("/3")
    assert mine.mem_total_mb == 2207.0
    assert len(parse_dcgm(text)) == 2  # without a pod: every GPU row


def test_dcgm_h100_other_pod_gives_every_gpu(testdata: Path) -> None:
    readings = parse_dcgm(
        (testdata / "gpu/dcgm/dcgm-exporter_h100_pod-labels_issue490.prom").read_text(), pod="x"
    )
    assert len(readings) == 3


def test_dcgm_without_the_fields(testdata: Path) -> None:
    assert (
        parse_dcgm((testdata / "gpu/dcgm/dcgm-exporter_titan-v_empty-pod-labels_issue58.prom").read_text())
        == []
    )


def test_npu_exporter_golden(testdata: Path) -> None:
    chips = parse_npu_exporter((testdata / "npu/npu-exporter/npu-exporter_910_8chip_golden.prom").read_text())
    assert [c.device for c in chips] == [str(i) for i in range(8)]
    assert combine(chips) is not None


@pytest.mark.parametrize(
    ("name", "chips", "first"),
    [
        (
            "npu-smi-info_ai-server_atlas-800-training-server_model-9010_version-24.1.RC2.txt",
            8,
            (0.0, 0.0, 32768.0),
        ),
        (
            "npu-smi-info_ai-server_atlas-800-training-server_model-9010_version-6.0.RC1.txt",
            8,
            (0.0, 0.0, 32768.0),
        ),
        (
            "npu-smi-info_ai-server_atlas-800-inference-server_model-3000_version-1.0.11-1.0.15.txt",
            4,
            (0.0, 2703.0, 8192.0),
        ),
        (
            "npu-smi-info_ai-server_atlas-800-inference-server_model-3000_version-1.0.0-1.0.10.txt",
            4,
            (0.0, 2703.0, 8192.0),
        ),
    ],
)
def test_npu_smi_info(testdata: Path, name: str, chips: int, first: tuple[float, float, float]) -> None:
    readings = parse_npu_smi_info((testdata / "npu/npu-smi" / name).read_text())
    assert len(readings) == chips
    assert (readings[0].util_pct, readings[0].mem_used_mb, readings[0].mem_total_mb) == first


def test_npu_smi_mapping_output_has_no_chip_rows(testdata: Path) -> None:
    name = "npu-smi-info-m_ai-server_atlas-800-training-server_model-9010_version-6.0.RC1.txt"
    assert parse_npu_smi_info((testdata / "npu/npu-smi" / name).read_text()) == []


def test_combine_means_utilisation_and_sums_memory() -> None:
    totals = combine([DeviceReading("0", 50, 1000, 4000), DeviceReading("1", 100, 3000, 4000)])
    assert totals is not None
    assert (totals.util_pct, totals.mem_used_mb, totals.mem_util_pct, totals.devices) == (75, 4000, 50, 2)
    assert combine([]) is None


def test_nvml_opens_or_says_why() -> None:
    # no NVIDIA driver on the CI machines: opening NVML fails cleanly, naming why; on a GPU host
    # it reads every device
    try:
        reader = NvmlReader.open()
    except NvmlUnavailableError as exc:
        reason = str(exc)
        assert "NVML" in reason or "nvidia-ml-py" in reason
        return
    readings = reader.read()
    reader.close()
    assert readings
    assert all(0 <= r.util_pct <= 100 and r.mem_total_mb > 0 for r in readings)
