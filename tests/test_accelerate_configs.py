from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

CONFIGS = Path(__file__).parents[1] / "accelerate_configs"

# file: (distributed type, processes, machines, ZeRO stage or FSDP version, on CPU)
EXPECTED = {
    "cpu.yaml": ("NO", 1, 1, None, True),
    "cpu_2proc.yaml": ("MULTI_GPU", 2, 1, None, True),
    "single_gpu.yaml": ("NO", 1, 1, None, False),
    "ddp.yaml": ("MULTI_GPU", 8, 1, None, False),
    "zero2.yaml": ("DEEPSPEED", 8, 1, 2, False),
    "zero2_cpu.yaml": ("DEEPSPEED", 1, 1, 2, True),
    "zero3.yaml": ("DEEPSPEED", 8, 1, 3, False),
    "zero3_multinode.yaml": ("DEEPSPEED", 16, 2, 3, False),
    "fsdp.yaml": ("FSDP", 8, 1, 2, False),
}


def test_every_config_is_checked():
    assert sorted(path.name for path in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_accelerate(name):
    config = load_config_from_file(str(CONFIGS / name))
    distributed_type, processes, machines, stage, on_cpu = EXPECTED[name]
    assert config.distributed_type == distributed_type
    assert (config.num_processes, config.num_machines, bool(config.use_cpu)) == (processes, machines, on_cpu)
    if distributed_type == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == stage
    if distributed_type == "FSDP":
        assert config.fsdp_config["fsdp_version"] == stage
    assert config.mixed_precision == ("no" if on_cpu else "bf16")
