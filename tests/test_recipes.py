"""配方、模型配置与神经元登记表：不可变、构造时校验；命令行、bench 与检查点用的是同一份。"""

import dataclasses

import pytest
import torch
from spikingjelly.activation_based import neuron

from snn_tutorial import bench, checkpoint, export, train
from snn_tutorial.checkpoint import load_checkpoint, save_checkpoint
from snn_tutorial.configs import ANNConfig, CSNNConfig
from snn_tutorial.models import CSNN, build_model
from snn_tutorial.neurons import NEURONS
from snn_tutorial.recipes import FAST, RECIPES


def test_recipes_are_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["csnn"].lr = 1.0
    with pytest.raises(ValueError, match="max_shift"):
        RECIPES["csnn"].replace(max_shift=99)
    assert FAST.epochs == 2 and FAST.max_shift == 0 and FAST.lr == RECIPES["csnn"].lr
    assert RECIPES["csnn"].as_dict() == {"epochs": 30, "lr": 2e-3, "batch_size": 128, "schedule": "cosine", "max_shift": 2}


def test_train_batches_carry_the_whole_recipe():
    """bench.time_epoch 曾经漏掉了 max_shift：现在批次由配方自己建，数据增强不会再丢。"""
    x, y = torch.zeros(8, 1, 28, 28, dtype=torch.uint8), torch.zeros(8)
    b = RECIPES["csnn"].train_batches(x, y, seed=3)
    assert (b.batch_size, b.max_shift, b.seed) == (128, 2, 3)
    assert RECIPES["csnn"].train_batches(x, y, world_size=2, rank=1).batch_size == 64
    assert "RECIPES" in bench.time_epoch.__globals__ and "DEFAULTS" not in bench.__dict__


def test_configs_write_only_non_default_optional_fields():
    assert CSNNConfig().to_dict() == {"channels": [32, 32], "hidden": 256, "T": 4, "tau": 2.0, "vote": 10}
    assert CSNNConfig(neuron="plif", pool="avg").to_dict()["neuron"] == "plif"
    assert ANNConfig.twin_of({"channels": [32, 64], "hidden": 256, "T": 4, "tau": 2.0, "vote": 10}).channels == (32, 64)
    with pytest.raises(ValueError, match="neuron"):
        CSNNConfig(neuron="izhikevich")


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_every_registered_neuron_builds_saves_and_loads(tmp_path, name):
    model = build_model("csnn", channels=(2, 2), hidden=4, neuron=name)
    kinds = {type(m) for m in model.modules() if isinstance(m, neuron.BaseNode)}
    assert kinds == {NEURONS[name].node_type}
    loaded, ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, "csnn"))
    assert ckpt["config"].get("neuron", "lif") == name and loaded.cfg.neuron == name


def test_train_cli_neuron_flag_is_validated_at_parse_time(capsys):
    args = train.build_parser().parse_args(["--neuron", "plif"])
    assert train.model_config(args) == {"neuron": "plif"}
    with pytest.raises(SystemExit) as info:
        train.build_parser().parse_args(["--neuron", "izhikevich"])
    assert info.value.code == 2 and "--neuron" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        train.main(["--model", "ann", "--neuron", "plif", "--dataset", "mnist-sample"])
    assert info.value.code == 2 and "--neuron 只用于 --model csnn" in capsys.readouterr().err


def test_plif_exports_to_nir_as_lif_with_learned_tau():
    """SpikingJelly 的 nir_exchange 把 ParametricLIFNode 写成 LIF（τ 取学到的值）：导出、读回后的脉冲与 PyTorch 一致。"""
    torch.manual_seed(0)
    model = CSNN(channels=(2, 2), hidden=8, pool="avg", neuron="plif").eval()
    for m in model.modules():
        if isinstance(m, neuron.ParametricLIFNode):
            m.w.data.fill_(0.3)   # “学到”的 τ = 1 / sigmoid(0.3)
    assert export.nir_problems(model) == []
    gm, core = export.load_nir(export.export_nir(model)), export.spiking_core(model)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(export.run_nir(gm, x, model.T), export.run_core(core, x, model.T))


def test_unregistered_neuron_is_refused_for_nir_in_chinese():
    model = CSNN(channels=(2, 2), hidden=8, pool="avg")
    model.snn[0] = neuron.IFNode(step_mode="m")
    problems = export.nir_problems(model)
    assert len(problems) == 1 and "IFNode" in problems[0] and "NIR 不能表示" in problems[0]


@pytest.mark.parametrize("asset", ["csnn_mnist.pt", "csnn_deploy_mnist.pt", "ann_mnist.pt"])
def test_shipped_assets_still_load_and_get_run_inputs(asset):
    path = checkpoint.SHIPPED.with_name(asset)
    if not path.exists():
        pytest.skip(f"没有 {asset}")
    _, ckpt = load_checkpoint(path)
    run = checkpoint.run_inputs(ckpt)
    assert run["dataset"] == "mnist" and "command" in run and "run" not in ckpt
    assert "test_acc" in ckpt["metrics"]


def test_new_checkpoints_keep_metrics_and_run_apart(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", CSNN(channels=(2, 2), hidden=4), "csnn", metrics={"test_acc": 0.5},
                           run={"dataset": "mnist-sample", "seed": 1})
    _, ckpt = load_checkpoint(path)
    assert ckpt["metrics"] == {"test_acc": 0.5} and ckpt["run"] == {"dataset": "mnist-sample", "seed": 1}
    assert checkpoint.run_inputs(ckpt) is ckpt["run"]
    _, old = load_checkpoint(save_checkpoint(tmp_path / "o.pt", CSNN(channels=(2, 2), hidden=4), "csnn",
                                             metrics={"test_acc": 0.5, "dataset": "mnist-sample"}))
    assert "run" not in old and checkpoint.run_inputs(old) == {"dataset": "mnist-sample"}
