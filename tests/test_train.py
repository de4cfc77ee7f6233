"""Training pieces without Snakemake: batches, augmentation, determinism, resume, the stem."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from labelbias.config import train_settings
from labelbias.models.augment import augment_batch
from labelbias.schema import schema_defaults
from labelbias.data.imaging import CACHE_MAX
from labelbias.errors import DataQualityError
from torchvision.models import resnet18

from labelbias.models.cpu_engine import DenseConv, compact, expand, live_taps, position_taps, reads_every_position
from labelbias.models.model import build_resnet18, freeze_before, grey_stem, initial_model, load_backbone, penultimate
from labelbias.models.train import (
    Feeder,
    TrainSettings,
    balanced_batches,
    fit,
    joint_target,
    keep_freed_memory,
    learning_rate,
    load_batch,
    predict,
    train_target,
)

torch.set_num_threads(1)


def toy_cache(n: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Half-disc images whose bright share tells the class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:24]
    disc = ((yy - 16) / 13) ** 2 + (xx / 18) ** 2 < 1
    labels = np.arange(n) % 2
    cache = np.zeros((n, 32, 24), dtype=np.uint16)
    for i in range(n):
        bright = xx < (6 + 8 * labels[i] + rng.normal(0, 1.5))
        image = np.where(disc, np.where(bright, 0.8, 0.3), 0.0) + rng.normal(0, 0.03, disc.shape) * disc
        cache[i] = np.round(np.clip(image, 0, 1) * CACHE_MAX)
    return cache, labels


def test_balanced_batches_hold_equal_class_counts():
    targets = np.array([0] * 70 + [1] * 20 + [2] * 10)
    batches = balanced_batches(targets, 30, np.random.default_rng(0))
    assert len(batches) == 100 // 30
    for batch in batches:
        assert np.bincount(targets[batch], minlength=3).tolist() == [10, 10, 10]
    again = balanced_batches(targets, 30, np.random.default_rng(0))
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))


def test_load_batch_keeps_requested_order():
    cache, _ = toy_cache(10)
    rows = np.array([7, 2, 9, 2])
    batch = load_batch(cache, rows)
    assert batch.shape == (4, 1, 32, 24)
    for i, row in enumerate(rows):
        np.testing.assert_allclose(batch[i, 0].numpy(), cache[row] / CACHE_MAX, atol=1e-6)


def test_augmentation_is_seeded_bounded_and_keeps_background():
    cache, _ = toy_cache(16)
    images = load_batch(cache, np.arange(16))
    a = augment_batch(images, torch.Generator().manual_seed(1))
    b = augment_batch(images, torch.Generator().manual_seed(1))
    c = augment_batch(images, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert (a[:, :, :, -2:] == 0).all()  # far from the breast stays background
    assert not torch.allclose(a, images)


def test_grey_stem_equals_rgb_stem_on_repeated_grey():
    rgb = torch.nn.Conv2d(3, 8, 7, 2, 3, bias=False)
    grey = grey_stem(rgb, keep_weights=True)
    x = torch.rand(2, 1, 20, 16)
    torch.testing.assert_close(grey(x), rgb(x.repeat(1, 3, 1, 1)))


def test_penultimate_features_are_512d_and_match_forward():
    model = build_resnet18(3).eval()
    x = torch.rand(2, 1, 32, 24)
    features, logits = penultimate(model, x)
    assert features.shape == (2, 512)
    torch.testing.assert_close(logits, model(x))


def test_live_taps_are_those_that_touch_the_input():
    assert live_taps(1, 3, 1, 1) == (1, 1)  # a 1x1 input: only the centre tap
    assert live_taps(2, 3, 2, 1) == (1, 2)  # 2 -> 1 with stride 2
    assert live_taps(2, 3, 1, 1) == (0, 2)  # 2x2, stride 1: every tap
    assert live_taps(8, 7, 2, 3) == (0, 6)


@pytest.mark.parametrize("height, width", [(16, 12), (32, 24), (40, 30), (20, 16), (64, 48)])
def test_compacted_network_computes_the_same_function_and_gradients(height, width):
    torch.manual_seed(0)
    full = build_resnet18(3).double()
    live = build_resnet18(3).double()
    live.load_state_dict(full.state_dict())
    cropped = compact(live, height, width)
    x = torch.randn(6, 1, height, width, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(live(x), full(x))
    torch.nn.functional.cross_entropy(full(x), target).backward()
    torch.nn.functional.cross_entropy(live(x), target).backward()
    for item in cropped:
        conv = live.get_submodule(item.name)
        full_grad = full.get_submodule(item.name).weight.grad
        torch.testing.assert_close(conv.weight.grad, full_grad[:, :, item.rows, item.cols])
        dead = torch.ones_like(full_grad, dtype=torch.bool)
        dead[:, :, item.rows, item.cols] = False
        assert (full_grad[dead] == 0).all()  # the taps left out never had a gradient
    torch.testing.assert_close(live.conv1.weight.grad, full.conv1.weight.grad)
    if (height, width) == (32, 24):
        layer4 = {"layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"}
        layer3 = {"layer3.0.conv2", "layer3.1.conv1", "layer3.1.conv2"}  # 3x3 on 2x2: every tap live
        assert {item.name for item in cropped} == layer4 | layer3
        assert {name for name, m in live.named_modules() if isinstance(m, DenseConv)} == layer4 | layer3
        assert sum(p.numel() for p in live.parameters()) < 0.4 * sum(p.numel() for p in full.parameters())
    if (height, width) == (16, 12):
        # the smallest input the config allows: from layer3's second convolution on every
        # input is 1x1, so each 3x3 kernel keeps its centre tap only
        centre_only = {
            name for name, m in live.named_modules() if isinstance(m, DenseConv) and m.weight.shape[-2:] == (1, 1)
        }
        assert {"layer3.0.conv2", "layer3.1.conv2", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"} <= centre_only
        assert sum(p.numel() for p in live.parameters()) < 0.2 * sum(p.numel() for p in full.parameters())
    if (height, width) == (64, 48):
        # every tap is live: nothing cropped, layer4's 3x3 convolutions on 2x2 made dense
        assert {item.name for item in cropped} == {"layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"}
        assert all(live.get_submodule(item.name).weight.shape == (512, 512, 3, 3) for item in cropped)


@pytest.mark.parametrize(
    "in_channels, out_channels, kernel, padding, size, bias",
    [
        (5, 4, 3, 1, (2, 2), False),  # layer3 at 32x24
        (5, 4, 2, 0, (2, 2), True),  # layer4.0.conv1 once cropped: 2x2 -> 1x1
        (6, 3, 1, 0, (1, 1), False),  # layer4 once cropped: 1x1 on 1x1
        (3, 2, 3, 1, (1, 2), True),
    ],
)
def test_dense_conv_is_the_convolution_as_one_matrix_product(in_channels, out_channels, kernel, padding, size, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(in_channels, out_channels, kernel, 1, padding, bias=bias).double()
    dense = DenseConv(conv, size)
    assert dense.weight is conv.weight  # the kernel stays the parameter
    x = torch.randn(7, in_channels, *size, dtype=torch.float64, requires_grad=True)
    x_dense = x.detach().clone().requires_grad_(True)
    expected, got = conv(x), dense(x_dense)
    torch.testing.assert_close(got, expected)
    upstream = torch.randn_like(expected)
    parameters = [conv.weight] + ([conv.bias] if bias else [])
    expected_grads = torch.autograd.grad(expected, [x, *parameters], upstream)
    got_grads = torch.autograd.grad(got, [x_dense, *parameters], upstream)
    for a, b in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b)
    # a channels-last input (the evaluator's layout) gives the same result
    torch.testing.assert_close(dense(x.detach().to(memory_format=torch.channels_last)), expected.detach())


def test_reads_every_position_agrees_with_the_enumerated_taps():
    cases = [(3, 1, 1), (3, 2, 1), (2, 1, 0), (1, 1, 0), (1, 2, 0), (7, 2, 3)]
    for kernel, stride, padding in cases:
        conv = torch.nn.Conv2d(1, 1, kernel, stride, padding)
        for size in [(1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (4, 3)]:
            if min(size) + 2 * padding < kernel:
                continue
            enumerated = bool((position_taps(conv, size)[0] >= 0).all())
            assert reads_every_position(conv, size) == enumerated, (kernel, stride, padding, size)
    # the study's stem at 256x192: decided without enumerating 12,288 x 49,152 position pairs
    assert not reads_every_position(torch.nn.Conv2d(1, 64, 7, 2, 3), (256, 192))


def test_dense_conv_refuses_a_convolution_that_skips_input_positions():
    stride_two = torch.nn.Conv2d(2, 2, 1, stride=2)  # reads only every other position
    with pytest.raises(ValueError, match="every input position"):
        DenseConv(stride_two, (2, 2))
    model = build_resnet18(2)
    cropped_only = compact(model, 32, 24, dense=False)  # what a GPU trains
    assert not any(isinstance(m, DenseConv) for m in model.modules())
    assert {item.name for item in cropped_only} == {"layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"}


def _dense_conv_in_the_standard_layout(dense: DenseConv, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """DenseConv's matrix product with the kernel in PyTorch's standard layout (how it ran before)."""
    out_channels, in_channels = weight.shape[:2]
    outputs = dense.output_size[0] * dense.output_size[1]
    per_tap = weight.permute(0, 2, 3, 1).reshape(out_channels, -1, in_channels)
    matrix = per_tap.index_select(1, dense.taps).reshape(out_channels * outputs, dense.input_positions * in_channels)
    flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], dense.input_positions * in_channels)
    return torch.nn.functional.linear(flat, matrix).view(x.shape[0], out_channels, *dense.output_size)


@pytest.mark.parametrize("kernel, padding, size", [(3, 1, (2, 2)), (2, 0, (2, 2)), (1, 0, (1, 1))])
def test_dense_conv_kernel_layout_changes_no_bit_of_outputs_or_gradients(kernel, padding, size):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(16, 8, kernel, 1, padding, bias=False)
    standard = conv.weight.detach().clone().requires_grad_(True)
    dense = DenseConv(conv, size)
    assert dense.weight.is_contiguous(memory_format=torch.channels_last)  # while a DenseConv holds it
    assert dense.identity_gather == (kernel != 3)  # the kernel is the matrix: no gather
    x = torch.randn(5, 16, *size)
    got, expected = dense(x), _dense_conv_in_the_standard_layout(dense, x, standard)
    assert torch.equal(got, expected)
    upstream = torch.randn_like(got)
    got.backward(upstream)
    expected.backward(upstream)
    assert torch.equal(dense.weight.grad, standard.grad)
    assert dense.weight.grad.is_contiguous(memory_format=torch.channels_last)  # accumulated without a copy


def test_expand_gives_the_kernels_their_standard_layout_back():
    model = build_resnet18(2)
    cropped = compact(model, 32, 24)
    assert not model.layer3[1].conv1.weight.is_contiguous()  # channels-last inside DenseConv
    expand(model, cropped)
    assert all(tensor.is_contiguous() for tensor in model.state_dict().values())


def test_expand_restores_the_full_network_with_the_trained_taps():
    torch.manual_seed(0)
    model = build_resnet18(2).eval()
    names_and_shapes = [(k, v.shape) for k, v in model.state_dict().items()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cropped = compact(model, 32, 24)
    with torch.no_grad():
        model.layer4[1].conv2.weight.add_(1.0)  # "training" the live taps
    x = torch.rand(3, 1, 32, 24)
    expected = model(x)
    expand(model, cropped)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == names_and_shapes
    torch.testing.assert_close(model(x), expected)
    weight = model.state_dict()["layer4.1.conv2.weight"]
    torch.testing.assert_close(weight[:, :, 1, 1], before["layer4.1.conv2.weight"][:, :, 1, 1] + 1)
    assert torch.equal(weight[:, :, 0, 0], before["layer4.1.conv2.weight"][:, :, 0, 0])  # dead taps untouched


def test_the_network_is_torchvisions_resnet18_with_a_grey_stem_and_a_new_head():
    model = build_resnet18(2)
    assert isinstance(model, torchvision.models.ResNet)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 2
    rgb = resnet18(weights=None).state_dict()
    ours = model.state_dict()
    assert list(ours) == list(rgb)
    assert [name for name in ours if ours[name].shape != rgb[name].shape] == ["conv1.weight", "fc.weight", "fc.bias"]
    # a torchvision state_dict (ImageNet's, say) gives the body its weights unchanged
    load_backbone(model, {k: v for k, v in rgb.items() if k != "conv1.weight"} | {"conv1.weight": rgb["conv1.weight"].sum(1, keepdim=True)})
    assert torch.equal(model.state_dict()["layer4.1.conv2.weight"], rgb["layer4.1.conv2.weight"])


def test_allocator_setting_is_accepted_here():
    # glibc on Linux (where tests run) accepts both settings; elsewhere the call is a no-op.
    assert keep_freed_memory() is True


# The schema's defaults with the recipe these tests were written with (a constant rate,
# the best validation epoch, seed 0, six epochs).
BASE = replace(
    TrainSettings(**train_settings(schema_defaults())),
    epochs=6, lr=1e-3, lr_schedule="constant", select_epoch="best_val_auc", seed=0, init="scratch",
)
SETTINGS = replace(BASE, epochs=3, batch_size=16, lr=1e-3, lr_schedule="cosine", seed=3, threads=1, eval_batch_size=64)


def _fit(cache, labels, checkpoint=None, on_epoch_end=None, settings=SETTINGS):
    rows = np.arange(len(labels))
    train, val = rows[:120], rows[120:]
    return fit(cache, train, labels[train], val, labels[val], 2, settings, checkpoint, on_epoch_end)


def test_fit_learns_and_is_deterministic():
    cache, labels = toy_cache()
    first = _fit(cache, labels)
    second = _fit(cache, labels)
    assert first.best_val_auc > 0.9
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_cosine_schedule_decays_to_zero_and_constant_stays():
    cosine = replace(BASE, lr=1e-3, lr_schedule="cosine")
    rates = [learning_rate(cosine, step, 100) for step in range(100)]
    assert rates[0] == pytest.approx(1e-3) and rates[50] == pytest.approx(5e-4)
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 1e-6
    assert learning_rate(replace(BASE, lr=1e-3), 99, 100) == 1e-3


class Killed(Exception):
    pass


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path):
    cache, labels = toy_cache()
    uninterrupted = _fit(cache, labels)
    checkpoint = tmp_path / "checkpoint.pt"

    def die_after_two(epoch):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        _fit(cache, labels, checkpoint, die_after_two)
    state = torch.load(checkpoint, weights_only=True)  # loads without pickled code
    assert state["epoch"] == 2
    resumed = _fit(cache, labels, checkpoint)
    assert resumed.resumed_from_epoch == 3
    assert [h["val_auc"] for h in resumed.history] == [h["val_auc"] for h in uninterrupted.history]
    for a, b in zip(resumed.model.state_dict().values(), uninterrupted.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    cache, labels = toy_cache()
    checkpoint = tmp_path / "checkpoint.pt"
    _fit(cache, labels, checkpoint, settings=TrainSettings(**{**SETTINGS.__dict__, "epochs": 1}))
    other = _fit(cache, labels, checkpoint, settings=TrainSettings(**{**SETTINGS.__dict__, "lr": 5e-4, "epochs": 1}))
    assert other.resumed_from_epoch == 0


def test_train_target_handles_multiclass_and_writes_val_and_test():
    cache, labels = toy_cache(180)
    frame = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(180)],
            "cache_row": np.arange(180),
            "split": ["train"] * 120 + ["val"] * 30 + ["test"] * 30,
            "vendor": np.array(["HOLO", "GEMS", "FUJI"])[np.arange(180) % 3],
        }
    )
    settings = replace(BASE, epochs=1, batch_size=15, seed=1, threads=1)
    # Without test images (the backbone's held-out patients) only validation predictions come back.
    no_test = frame.assign(split=["train"] * 120 + ["val"] * 60)
    _, _, val_only, val_features, _ = train_target(no_test, "vendor", cache, settings)
    assert set(val_only["split"]) == {"val"} and len(val_only) == 60 and val_features.shape == (60, 512)
    result, classes, predictions, features, index = train_target(frame, "vendor", cache, settings)
    assert classes == ["FUJI", "GEMS", "HOLO"]
    assert set(predictions["split"]) == {"val", "test"} and len(predictions) == 60
    probs = predictions[[f"prob_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert "score" not in predictions.columns
    assert features.shape == (60, 512) and features.dtype == np.float16
    assert index["feature_row"].tolist() == list(range(60))
    # Validation outputs come from the best epoch's pass: the same as running the final model again.
    assert result.val_outputs is not None
    again, again_features = predict(result.model, cache, np.arange(120, 180), with_features=True)
    np.testing.assert_array_equal(probs, again)
    np.testing.assert_array_equal(features, again_features.astype(np.float16))


def test_backbone_init_copies_every_weight_but_the_head():
    torch.manual_seed(0)
    source = build_resnet18(4)
    model = initial_model(2, "backbone", source.state_dict())
    for name, value in model.state_dict().items():
        if name.startswith("fc."):
            assert value.shape[0] == 2
        else:
            assert torch.equal(value, source.state_dict()[name]), name
    with pytest.raises(DataQualityError, match="do not fit a 1-channel ResNet-18"):
        initial_model(2, "backbone", {"conv9.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="needs the backbone's weights"):
        initial_model(2, "backbone")


def test_fit_from_a_backbone_starts_where_it_left_and_resumes_only_with_the_same_one(tmp_path):
    cache, labels = toy_cache()
    first = _fit(cache, labels)
    settings = TrainSettings(**{**SETTINGS.__dict__, "init": "backbone", "epochs": 1, "lr": 1e-4})
    rows = np.arange(len(labels))
    tuned = fit(cache, rows[:120], labels[:120], rows[120:], labels[120:], 2, settings, backbone=first.model.state_dict())
    scratch = _fit(cache, labels, settings=TrainSettings(**{**SETTINGS.__dict__, "epochs": 1, "lr": 1e-4}))
    assert tuned.best_val_auc > 0.9 and tuned.best_val_auc >= scratch.best_val_auc
    checkpoint = tmp_path / "checkpoint.pt"
    fit(cache, rows[:120], labels[:120], rows[120:], labels[120:], 2, settings, checkpoint, backbone=first.model.state_dict())
    other = build_resnet18(2).state_dict()
    again = fit(cache, rows[:120], labels[:120], rows[120:], labels[120:], 2, settings, checkpoint, backbone=other)
    assert again.resumed_from_epoch == 0  # another backbone: not the same run


def test_fine_tuning_from_layer4_keeps_the_earlier_stages_as_they_started():
    cache, labels = toy_cache()
    start = _fit(cache, labels, settings=TrainSettings(**{**SETTINGS.__dict__, "epochs": 1})).model.state_dict()
    settings = TrainSettings(**{**SETTINGS.__dict__, "init": "backbone", "epochs": 1, "fine_tune_from": "layer4"})
    rows = np.arange(len(labels))
    tuned = fit(cache, rows[:120], labels[:120], rows[120:], labels[120:], 2, settings, backbone=start).model.state_dict()
    for name, value in tuned.items():
        if name.startswith(("conv1", "bn1", "layer1", "layer2", "layer3")):
            assert torch.equal(value, start[name]), name  # weights and batch-norm statistics alike
        elif name.startswith("layer4") and name.endswith("weight"):
            assert not torch.equal(value, start[name]), name
    with pytest.raises(ValueError, match="unknown stage"):
        freeze_before(build_resnet18(2), "layer5")


def test_fit_without_validation_keeps_the_last_epoch():
    cache, labels = toy_cache()
    empty = np.zeros(0, dtype=int)
    result = fit(cache, np.arange(120), labels[:120], empty, empty, 2, SETTINGS)
    assert result.best_epoch == SETTINGS.epochs
    assert all(np.isnan(h["val_auc"]) for h in result.history)
    probabilities, _ = predict(result.model, cache, np.arange(120, 160))
    assert probabilities.shape == (40, 2)
    probabilities, features = predict(result.model, cache, np.zeros(0, dtype=int), with_features=True)
    assert probabilities.shape == (0, 2) and features.shape == (0, 512)


def test_joint_target_is_one_class_per_combination_and_names_a_missing_column():
    frame = pd.DataFrame({"density": ["C", "C", "B"], "manufacturer": ["FUJI", "HOLO", "FUJI"]})
    assert joint_target(frame, "density+manufacturer").tolist() == ["C/FUJI", "C/HOLO", "B/FUJI"]
    with pytest.raises(DataQualityError, match="no column race"):
        joint_target(frame, "density+race")


def test_epoch_selection_keeps_the_best_validation_auc_or_the_last_epoch():
    cache, labels = toy_cache()
    base = {**SETTINGS.__dict__, "epochs": 3}
    best = _fit(cache, labels, settings=TrainSettings(**base))
    last = _fit(cache, labels, settings=TrainSettings(**{**base, "select_epoch": "last"}))
    aucs = [h["val_auc"] for h in best.history]
    assert best.best_epoch == 1 + int(np.argmax(aucs)) and best.best_val_auc == max(aucs)
    # same seed, same steps: the two runs share every epoch and differ only in what they keep
    assert [h["loss"] for h in last.history] == [h["loss"] for h in best.history]
    assert last.best_epoch == 3 and last.best_val_auc == aucs[-1]
    rows = np.arange(120, 160)
    kept_last, _ = predict(last.model, cache, rows, 64)
    np.testing.assert_allclose(last.val_outputs[0], kept_last, atol=1e-6)


def test_feeder_paths_give_the_same_batches():
    cache, _ = toy_cache(50)
    row_batches = [np.array([3, 1, 49, 3]), np.array([0]), np.arange(10, 30)]
    dev = torch.device("cpu")
    host = [b.clone() for b in Feeder(cache, dev, "host").batches(row_batches)]
    for loading in ("device", "prefetch"):
        feeder = Feeder(cache, dev, loading)
        assert feeder.loading == loading
        batches = list(feeder.batches(row_batches))
        assert len(batches) == len(host)
        for a, b in zip(host, batches, strict=True):
            assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b)  # bit for bit
    # A perturbed view of the cache (the separability grid's) goes every path too.
    from labelbias.data.perturb import Perturbation, PerturbedCache

    perturbed = PerturbedCache(cache, Perturbation("noise", 0.2, 7))
    expected = list(Feeder(perturbed, dev, "host").batches(row_batches))
    for loading in ("device", "prefetch"):
        got = list(Feeder(perturbed, dev, loading).batches(row_batches))
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    # auto on the CPU reads the memory map: the page cache already holds it.
    assert Feeder(cache, dev, "auto").loading == "host"
    with pytest.raises(ValueError, match="train.loading"):
        Feeder(cache, dev, "gpu")


def test_prefetching_stops_cleanly_and_passes_errors_on():
    cache, _ = toy_cache(20)
    feeder = Feeder(cache, torch.device("cpu"), "prefetch", depth=1)
    stream = feeder.batches([np.array([i]) for i in range(20)])
    next(stream)
    stream.close()  # a consumer that stops early does not leave the reader blocked
    with pytest.raises(IndexError):
        list(feeder.batches([np.array([0]), np.array([99])]))


@pytest.mark.parametrize("loading", ["device", "prefetch"])
def test_every_batch_path_trains_the_same_model(loading):
    """The GPU's paths, run on the CPU: the same model and predictions as the host path, bit for bit."""
    cache, labels = toy_cache()
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 1, "loading": "host"})
    reference = _fit(cache, labels, settings=settings)
    other = _fit(cache, labels, settings=TrainSettings(**{**settings.__dict__, "loading": loading}))
    assert other.feeder is not None and other.feeder.loading == loading
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(tensor, other.model.state_dict()[name]), name
    rows = np.arange(len(labels))
    expected, _ = predict(reference.model, cache, rows, 32)
    got, _ = predict(other.model, cache, rows, 32, feeder=other.feeder)
    np.testing.assert_array_equal(expected, got)


