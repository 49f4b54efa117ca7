"""数据层：数据目录解析、各种错误输入的中文提示、小样本、张量批次。"""

import os
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from snn_tutorial import data, split_check
from snn_tutorial.data import (
    CorruptDataError, DataNotFoundError, DataPathError, TensorBatches,
    load_raw, load_sample, resolve_data_root,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_fake_files(root: Path, truncate: str | None = None, ink: bool = False) -> Path:
    """写出大小正确的四个假 MNIST 文件（合法的 IDX 文件头 + 全零数据），可选截断其中一个。

    全零的像素正是“大小与文件头都对、内容被清零”的坏文件，加载时会被认出来；ink=True 时每张图有一个亮点
    （配合 trust 把它们当作官方文件，用来测试与内容无关的逻辑）。
    """
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, size in data.ALL_FILES:
        n = 60000 if name.startswith("train") else 10000
        header = (b"\x00\x00\x08\x03" + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2) if "images" in name \
            else (b"\x00\x00\x08\x01" + n.to_bytes(4, "big"))
        body = (bytes(783) + b"\xff") * n if ink and "images" in name else bytes(size - len(header))
        payload = header + body
        if name == truncate:
            payload = payload[: size // 2]
        (raw / name).write_bytes(payload)
    return raw


def trust(monkeypatch, raw: Path) -> None:
    """把 raw 里的假文件当作官方文件（替换官方 MD5）：测试与文件内容无关的逻辑（路径、格式）时用。"""
    monkeypatch.setitem(data.OFFICIAL_MD5, "MNIST", {name: data.file_md5(raw / name) for name, _ in data.ALL_FILES})


# ---------------------------------------------------------------- 数据目录解析
def test_root_priority(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == (tmp_path / "arg", "参数")
    assert resolve_data_root() == (tmp_path / "env", "环境变量 SNN_DATA_DIR")
    monkeypatch.delenv("SNN_DATA_DIR")
    root, source = resolve_data_root()
    assert source == "默认" and root == data.repo_root() / "data"


def test_wrong_path_message(tmp_path):
    with pytest.raises(DataPathError, match="数据目录不存在") as err:
        load_raw(root=tmp_path / "no_such_dir")
    assert "no_such_dir" in str(err.value) and "参数" in str(err.value)


def test_path_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataPathError, match="是一个文件"):
        load_raw(root=f)


@pytest.mark.parametrize("depth", ["MNIST", "MNIST/raw"])
def test_path_too_deep(tmp_path, depth):
    write_fake_files(tmp_path)
    with pytest.raises(DataPathError, match="太深") as err:
        load_raw(train=False, root=tmp_path / depth)
    assert f"请把数据目录设为 {tmp_path}" in str(err.value)


def test_files_directly_in_plain_folder(tmp_path, monkeypatch):
    """四个文件直接放在普通文件夹里：不是“太深”，而是要建 MNIST/raw/ 把文件移进去（数据目录不变）。"""
    raw = write_fake_files(tmp_path, ink=True)
    trust(monkeypatch, raw)
    plain = tmp_path / "plain"
    raw.rename(plain)
    with pytest.raises(DataPathError) as err:
        load_raw(train=False, root=plain)
    msg = str(err.value)
    assert "太深" not in msg and f"mkdir -p {plain}/MNIST/raw" in msg and f"数据目录仍设为 {plain}" in msg
    (plain / "MNIST" / "raw").mkdir(parents=True)             # 照着说明做，就能加载
    for f in list(plain.glob("*-ubyte")):
        f.rename(plain / "MNIST" / "raw" / f.name)
    assert load_raw(train=False, root=plain)[0].shape == (10000, 1, 28, 28)


def test_missing_without_download(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_raw(train=False, root=tmp_path, download=False)
    msg = str(err.value)
    for name, _ in data.ALL_FILES:
        assert name in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "SNN_DATA_DIR" in msg


def test_no_network(tmp_path, monkeypatch):
    """模拟断网：把下载镜像指向本机一个没人监听的端口，连接会被立即拒绝。"""
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataNotFoundError, match="自动下载失败") as err:
        load_raw(train=False, root=tmp_path)
    assert "t10k-images-idx3-ubyte" in str(err.value) and "联网" in str(err.value)
    assert not any((tmp_path / "MNIST" / "raw").glob("*-ubyte")), "失败的下载不应留下半截的数据文件"


def test_truncated_file(tmp_path):
    write_fake_files(tmp_path, truncate="t10k-images-idx3-ubyte")
    with pytest.raises(CorruptDataError) as err:
        load_raw(train=False, root=tmp_path)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte" in msg and "7840016" in msg and "删除" in msg


def test_corrupt_header(tmp_path):
    raw = write_fake_files(tmp_path)
    f = raw / "t10k-labels-idx1-ubyte"
    f.write_bytes(b"garbage!" + f.read_bytes()[8:])
    with pytest.raises(CorruptDataError, match="文件头不对") as err:
        load_raw(train=False, root=tmp_path)
    assert str(f) in str(err.value)                     # 指明是哪一个文件


def test_fake_files_load(tmp_path, monkeypatch):
    trust(monkeypatch, write_fake_files(tmp_path, ink=True))
    x, y = load_raw(train=False, root=tmp_path)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (10000,)


def test_zeroed_files_are_refused(tmp_path):
    """大小与文件头都对、像素全是 0（云盘的占位文件、中断的 rsync --inplace）：按官方 MD5 认出来，不会评估出 11% 的准确率。"""
    write_fake_files(tmp_path)
    with pytest.raises(CorruptDataError, match="内容与官方的 mnist 文件不一致") as err:
        load_raw(train=False, root=tmp_path)
    assert "t10k-images-idx3-ubyte" in str(err.value)


def test_extracted_files_are_readable_by_others(tmp_path):
    """从 .gz 解压出的文件与普通文件一样按 umask 设权限（不是临时文件的 0600），别的账户也能读共享的数据目录。"""
    import gzip
    import stat

    raw = write_fake_files(tmp_path / "src", ink=True)
    target = tmp_path / "d" / "FashionMNIST" / "raw"           # Fashion-MNIST：假文件也能解压（没有解压后文件的官方 MD5）
    target.mkdir(parents=True)
    for name, _ in data.ALL_FILES:
        (target / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes(), compresslevel=1))
    old = os.umask(0o022)
    try:
        x, _ = load_raw("fashion-mnist", train=False, root=tmp_path / "d")
    finally:
        os.umask(old)
    extracted = sorted(p for p in target.iterdir() if not p.name.endswith(".gz"))
    assert x.shape == (10000, 1, 28, 28) and len(extracted) == 4
    assert [stat.S_IMODE(p.stat().st_mode) for p in extracted] == [0o644] * 4


@pytest.mark.skipif(not SHARED.exists(), reason="没有完整的 MNIST")
def test_full_mnist_readonly_root():
    x, y = load_raw(train=False, root=SHARED)
    assert x.shape == (10000, 1, 28, 28) and torch.bincount(y).tolist()[0] == 980


# ---------------------------------------------------------------- 小样本
def test_sample_shape_and_labels():
    x, y = load_sample()
    assert x.shape == (1000, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y, minlength=10).tolist() == [100] * 10
    assert 0.08 < x.float().div(255).mean().item() < 0.2  # 真实的手写数字，不是空白图
    assert data.SAMPLE_FILE.stat().st_size < 1_000_000
    assert (data.SAMPLE_FILE.parent / "MNIST_SAMPLE_LICENSE.md").read_text(encoding="utf-8").count("CC BY-SA 3.0") >= 1


@pytest.mark.skipif(not SHARED.exists(), reason="没有完整的 MNIST")
def test_sample_matches_test_set():
    import numpy as np

    x, y = load_raw(train=False, root=SHARED)
    with np.load(data.SAMPLE_FILE) as f:
        idx = torch.from_numpy(f["test_index"].astype("int64"))
    sx, sy = load_sample()
    assert torch.equal(x[idx], sx) and torch.equal(y[idx], sy)


# ---------------------------------------------------------------- 张量批次
def test_batches_shapes_and_normalization():
    x, y = load_sample()
    batches = TensorBatches(x, y, batch_size=64, shuffle=False)
    got = list(batches)
    assert len(got) == len(batches) == 16
    assert got[0][0].shape == (64, 1, 28, 28) and got[-1][0].shape == (1000 - 15 * 64, 1, 28, 28)
    allx = torch.cat([b[0] for b in got])
    expected = (x.float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(allx, expected)
    assert torch.equal(torch.cat([b[1] for b in got]), y)


def test_batches_shuffle_is_seeded():
    x, y = load_sample()
    def labels(b):
        return torch.cat([t for _, t in b])

    a, b = TensorBatches(x, y, 100, seed=1), TensorBatches(x, y, 100, seed=1)
    first_a, first_b = labels(a), labels(b)
    assert torch.equal(first_a, first_b)                    # 同种子 → 同顺序
    assert not torch.equal(first_a, y)                      # 确实打乱了
    assert not torch.equal(labels(a), first_a)              # 下一个 epoch 换了顺序
    assert not torch.equal(labels(TensorBatches(x, y, 100, seed=2)), first_a)
    assert sorted(first_a.tolist()) == sorted(y.tolist())   # 不重不漏


def test_batches_distributed_split_covers_everything():
    x, y = load_sample()
    parts = [TensorBatches(x, torch.arange(1000), 64, seed=3, rank=r, world_size=3) for r in range(3)]
    seen = torch.cat([t for p in parts for _, t in p])
    assert len(seen) == 3 * 334 and set(seen.tolist()) == set(range(1000))
    assert len(parts[0]) == 6


def test_batches_raw_mode_keeps_counts_and_any_shape():
    counts = torch.randint(0, 4, (50, 3, 2, 5, 5), dtype=torch.uint8)     # 例如事件帧 [N, T, 2, H, W]
    batches = TensorBatches(counts, torch.arange(50), 16, shuffle=False, dataset=None)
    assert batches.x.dtype == torch.uint8                                  # 按原样存放
    got = list(batches)
    assert got[0][0].dtype == torch.float32 and got[0][0].shape == (16, 3, 2, 5, 5)
    assert torch.equal(torch.cat([b[0] for b in got]), counts.float())     # 不做标准化
    with pytest.raises(ValueError, match="max_shift"):
        TensorBatches(counts, torch.arange(50), 16, dataset=None, max_shift=2)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        TensorBatches(counts, torch.arange(50), 16)                        # 图像数据集仍要求 4 维


def test_random_shift_is_a_translation():
    x = torch.zeros(200, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 12:16, 12:16] = 255                      # 中间一个 4×4 的亮块
    shifted, _ = next(iter(TensorBatches(x, torch.zeros(200), 200, shuffle=False, max_shift=2)))
    bright = shifted[:, 0] > 0
    assert torch.all(bright.sum((1, 2)) == 16)       # 亮块完整保留，只是挪了位置
    rows = bright.any(2).float().argmax(1) - 12      # 每张图亮块左上角的位移
    cols = bright.any(1).float().argmax(1) - 12
    assert rows.abs().max() <= 2 and cols.abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 25   # 5×5 种位移都出现了
    assert torch.all(shifted[~bright.unsqueeze(1)] == data.normalize(torch.zeros(1, dtype=torch.uint8)))


def test_dataloader_route_matches_tensor_route(tmp_path, monkeypatch):
    if SHARED.exists():
        root = SHARED
    else:
        raw = write_fake_files(tmp_path, ink=True)
        trust(monkeypatch, raw)
        root = raw.parents[1]
    loader = data.dataloader(train=False, root=root, batch_size=32)
    xb, yb = next(iter(loader))
    fast = next(iter(data.tensor_batches(train=False, root=root, batch_size=32)))
    assert torch.allclose(xb, fast[0], atol=1e-6) and torch.equal(yb, fast[1])


def test_split_validation_is_fixed_disjoint_and_complete():
    x, y = data.load_sample()
    tx, ty, vx, vy = data.split_validation(x, y, 100)
    assert len(vy) == 100 and len(ty) == len(y) - 100
    again = data.split_validation(x, y, 100)
    assert torch.equal(again[2], vx) and torch.equal(again[0], tx)         # 与 --seed 无关：每次同一份验证集
    rows = {tuple(r.flatten().tolist()) for r in x}
    assert len(rows) == len(x)                                             # 样本各不相同，下面按内容核对
    seen = [tuple(r.flatten().tolist()) for r in torch.cat([tx, vx])]
    assert sorted(seen) == sorted(rows)                                   # 不重不漏
    assert sorted(torch.cat([ty, vy]).tolist()) == sorted(y.tolist())
    with pytest.raises(ValueError, match="至少要剩 2 个"):
        data.split_validation(x, y, len(y) - 1)
    with pytest.raises(ValueError, match="n_val"):
        data.split_validation(x, y, 0)


def test_split_validation_tail_keeps_the_last_block_in_order():
    x, y = data.load_sample()
    tx, ty, vx, vy = data.split_validation(x, y, 100, how="tail")
    assert torch.equal(vx, x[-100:]) and torch.equal(vy, y[-100:])        # 最后 100 个，顺序不变
    assert torch.equal(tx, x[:-100]) and torch.equal(ty, y[:-100])
    assert not torch.equal(data.split_validation(x, y, 100)[2], vx)       # 与默认的随机抽取不同
    with pytest.raises(ValueError, match="how"):
        data.split_validation(x, y, 100, how="writer")
    with pytest.raises(ValueError, match="至少要剩 2 个"):
        data.split_validation(x, y, len(y) - 1, how="tail")


def test_shuffle_orders_of_different_seeds_do_not_overlap():
    """种子 s 的第 e+1 轮不能与种子 s+1 的第 e 轮顺序相同（早先 seed + epoch 的写法就是这样）；种子 0 的顺序保持不变。"""
    x, y = data.load_sample()

    def order(seed, epoch):
        batches = TensorBatches(x, y, 1000, seed=seed, dataset="mnist-sample")
        batches.set_epoch(epoch)
        return batches._indices()

    assert not torch.equal(order(0, 1), order(1, 0)) and not torch.equal(order(1, 1), order(2, 0))
    assert torch.equal(order(0, 3), torch.randperm(len(y), generator=torch.Generator().manual_seed(3)))


def test_augmentation_differs_between_processes():
    """多进程时各进程的第 k 张图不应得到同样的随机平移。"""
    x = torch.zeros(8, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 14, 14] = 255
    where = []
    for rank in (0, 1):
        batch, _ = next(iter(TensorBatches(x, torch.zeros(8), 4, seed=0, max_shift=2, rank=rank, world_size=2)))
        where.append([tuple(torch.nonzero(img[0] == img.max()).flatten().tolist()) for img in batch])
    assert where[0] != where[1]


def test_check_split_sees_writers_in_contiguous_runs(monkeypatch):
    """假数据：24 个“书写者”各写 10 张几乎相同的图、顺序排列。连续分份时同一书写者的图全被留出，最近邻只能找别人的图。"""
    gen = torch.Generator().manual_seed(0)
    prototypes = torch.randint(0, 256, (24, 1, 28, 28), generator=gen).float()
    images = (prototypes.repeat_interleave(10, 0) + torch.randn(240, 1, 28, 28, generator=gen)).clamp(0, 255).to(torch.uint8)
    labels = torch.arange(24).remainder(10).repeat_interleave(10)
    monkeypatch.setattr(data, "load_raw", lambda *a, **k: (images, labels))
    r = split_check.check_split(folds=12)
    assert r["adjacent"] < r["random"] / 5                   # 相邻的图几乎相同
    assert r["knn_random"] < 0.05 and r["knn_tail"] > 0.5    # 随机分份时同一书写者的图还在参考集里
    assert r["fold_size"] == 20 and r["knn_tail_last"] >= 0.5


def test_random_affine_zero_is_identity_and_background_stays_background():
    x = torch.randn(8, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)
    assert data.random_affine(x, 0, 0, 0, -0.4, gen) is x
    img = torch.full((64, 1, 28, 28), -0.4)
    img[:, :, 10:18, 10:18] = 2.0
    out = data.random_affine(img, 2, 10, 0.1, -0.4, gen)
    assert torch.equal(out[:, :, :3, :], img[:, :, :3, :])    # 画面边缘仍是背景值（笔画没有挪到那里）
    assert not torch.equal(out, img)


def test_random_affine_rotates_and_scales_within_limits():
    img = torch.zeros(500, 1, 28, 28)
    img[:, :, 13:15, 4:24] = 1.0                            # 过中心的一条水平线，长 20 像素
    gen = torch.Generator().manual_seed(1)
    rotated = data.random_affine(img, 0, 10, 0, 0.0, gen)[:, 0]
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    w = rotated.clamp(min=0)
    mass = w.sum((1, 2))
    cy, cx = (w * ys).sum((1, 2)) / mass, (w * xs).sum((1, 2)) / mass
    assert torch.allclose(cy, torch.full_like(cy, 13.5), atol=0.3) and torch.allclose(cx, torch.full_like(cx, 13.5), atol=0.3)
    vy, vx = ys - cy[:, None, None], xs - cx[:, None, None]   # 由二阶矩求主轴的角度
    angle = 0.5 * torch.atan2(2 * (w * vy * vx).sum((1, 2)), (w * vx * vx).sum((1, 2)) - (w * vy * vy).sum((1, 2)))
    degrees = angle.rad2deg().abs()
    assert degrees.max() <= 10.5 and degrees.max() >= 8      # 不超过 10°，也确实转到了接近 10°
    scaled = data.random_affine(img, 0, 0, 0.2, 0.0, gen)[:, 0]
    factor = (scaled.sum((1, 2)) / img[:, 0].sum((1, 2))).sqrt()   # 面积按缩放倍数的平方变化
    assert factor.min() >= 0.8 - 0.04 and factor.max() <= 1.2 + 0.04     # 插值让细线的面积略有出入
    assert factor.max() - factor.min() > 0.3                 # 倍数确实在 0.8 … 1.2 里随机变化


def test_tensor_batches_augmentation_is_reproducible_and_validated():
    x = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8)
    first = [b for b, _ in TensorBatches(x, torch.zeros(40), 16, seed=3, max_shift=2, max_rotate=10, max_scale=0.1)]
    again = [b for b, _ in TensorBatches(x, torch.zeros(40), 16, seed=3, max_shift=2, max_rotate=10, max_scale=0.1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    for bad in ({"max_rotate": -1}, {"max_rotate": 181}, {"max_scale": 1.0}, {"max_rotate": float("nan")}, {"max_scale": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TensorBatches(x, torch.zeros(40), 16, **bad)
    with pytest.raises(ValueError, match="max_rotate"):
        TensorBatches(x, torch.zeros(40), 16, dataset=None, max_rotate=5)
