"""The masked-autoencoder tasks (``videomae``, ``mae``): options, per-sample masks from the loader's seeds, the
reconstruction picture, a bit-exact resume, ``vitzoo pretrain`` end to end with fine-tuning from its encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import Dataset

import vitzoo
from tests.helpers.images import write_image_folders
from vitzoo.cli.main import main
from vitzoo.data.loader import make_loader
from vitzoo.schema import ConfigError
from vitzoo.ssl import build_method
from vitzoo.ssl.masked_data import MaskedSamples
from vitzoo.ssl.methods.masked import MaskedModeling, token_grid
from vitzoo.ssl.reconstruction import pixel_mask, reconstruction_rows, render
from vitzoo.train import fit_task, get_task

IMAGE = "vit_nano_patch8_32"  # (3, 32, 32), a 4 x 4 grid, width 64
VIDEO = "vivit_joint_nano_8x2"  # (3, 4, 32, 32), a 2 x 4 x 4 grid, width 64
RECIPE = Path(__file__).parents[2] / "configs" / "videomae_vivit_joint_micro_motion.yaml"
FINETUNE = Path(__file__).parents[2] / "configs" / "demo_motion_micro.yaml"


class RandomInputs(Dataset):
    """``n`` random ``(input, label)`` samples; with ``(index, seed)`` keys the input is drawn from the torch RNG
    (seeded by :class:`MaskedSamples`), as an augmentation would."""

    def __init__(self, n: int, shape: tuple[int, ...]) -> None:
        self.n, self.shape = n, shape

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        base = torch.randn(self.shape, generator=torch.Generator().manual_seed(index))
        return base + 0.1 * torch.randn(self.shape), index % 2  # the "augmentation" draws from the global RNG


def _task(name: str = IMAGE, method: str = "mae", **options) -> MaskedModeling:
    torch.manual_seed(0)
    backbone = vitzoo.create(name, num_classes=0, depth=1)
    return build_method(method, backbone, decoder_dim=32, decoder_depth=1, decoder_heads=2, **options)


def _samples(task: MaskedModeling, n: int = 12) -> MaskedSamples:
    return MaskedSamples(RandomInputs(n, tuple(task.model.input_shape)), *task.mask_generators())


def test_options_defaults_and_one_line_errors():
    video, image = get_task("videomae").parse_options({}), get_task("mae").parse_options({})
    assert (video.mask, video.mask_ratio, video.decoder_depth, video.norm_pix_loss) == ("tube", 0.9, 4, True)
    assert (image.mask, image.mask_ratio, image.crop.scale) == ("random", 0.75, (0.44, 1.0))
    assert get_task("videomae").parse_options({"decoder_mask": "running_cell"}).decoder_mask_ratio == 0.5
    bad = [
        ({"mask_ratio": 1.0}, r"mask_ratio must be in \(0, 1\), got 1\.0"),
        ({"mask": "tubes"}, r"did you mean tube"),
        ({"decoder_depth": 0}, r"decoder_depth must be > 0, got 0"),
        ({"crop": {"scale": [0.5, 0.2]}}, r"crop\.scale=\[0\.5, 0\.2\] must be \(min, max\)"),
        ({"views": {"num_views": 2}}, r"task\.options\.views"),  # masked tasks take one clip, not views
    ]
    for options, message in bad:
        with pytest.raises(ConfigError, match=message):
            get_task("videomae").parse_options(options)


@pytest.mark.slow  # two worker processes
def test_masks_come_from_the_sample_seed_whatever_the_worker_count():
    task = _task(VIDEO, "videomae", decoder_mask="running_cell")
    data = _samples(task)
    grid = token_grid(task.model)
    sample = data[(3, 42)]
    assert sample["clip"].shape == (3, 4, 32, 32) and sample["mask"].shape == sample["decoder_mask"].shape == (32,)
    assert torch.equal(sample["clip"], data[(3, 42)]["clip"]) and torch.equal(sample["mask"], data[(3, 42)]["mask"])
    tubes = sample["mask"].view(grid)
    assert torch.equal(tubes[0], tubes[1]) and int(tubes[0].sum()) == round(0.9 * 16)  # a tube mask at 90%
    assert not torch.equal(data[(3, 43)]["mask"], sample["mask"])  # another seed (epoch), another mask

    def epoch(workers: int) -> list[dict]:
        return list(make_loader(data, batch_size=4, num_workers=workers, shuffle=True, seed=7))

    one, two = epoch(0), epoch(2)
    for a, b in zip(one, two, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in ("clip", "mask", "decoder_mask", "label"))


def test_training_step_and_state_keep_the_encoder_as_the_model():
    task = _task()
    batch = torch.utils.data.default_collate([_samples(task)[(i, i)] for i in range(4)])
    out = task(batch)
    out.loss.backward()
    assert out.loss.ndim == 0 and out.batch_size == 4 and out.metrics == {}
    assert task.mae.encoder is task.model and task.model.cfg.num_classes == 0
    extra = task.extra_state_dict()
    assert extra and not any(k.startswith(("model.", "mae.encoder.")) for k in extra)  # the decoder only
    with pytest.raises(ValueError, match="a dict with 'clip' and 'mask'"):
        task((batch["clip"], batch["label"]))
    with pytest.raises(ValueError, match="lacks a 'decoder_mask'"):
        _task(decoder_mask="running_cell")(batch)


def test_the_picture_masks_the_right_pixels_and_pastes_visible_patches():
    mask = torch.tensor([[True, False, False, True]])  # a (1, 2, 2) grid of (1, 2, 3) patches
    pixels = pixel_mask(mask, (1, 2, 2), (1, 2, 3))
    assert pixels.shape == (1, 1, 1, 4, 6)
    assert pixels[0, 0, 0, :2, :3].all() and not pixels[0, 0, 0, :2, 3:].any() and pixels[0, 0, 0, 2:, 3:].all()
    task = _task().eval()
    batch = torch.utils.data.default_collate([_samples(task)[i] for i in range(2)])
    rows = reconstruction_rows(task, batch["clip"], batch["mask"])  # (B, 3, C, 1, H, W)
    assert rows.shape == (2, 3, 3, 1, 32, 32) and rows.min() >= 0 and rows.max() <= 1
    hidden = pixel_mask(batch["mask"], token_grid(task.model), (1, 8, 8)).expand_as(rows[:, 0])
    original, masked, rebuilt = rows.unbind(1)
    assert torch.equal(masked[~hidden], original[~hidden]) and (masked[hidden] == 0.5).all()
    assert torch.equal(rebuilt[~hidden], original[~hidden]) and not torch.equal(rebuilt[hidden], original[hidden])
    assert render(rows).startswith(b"\x89PNG")


@pytest.mark.slow
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path):
    settings = dict(epochs=2, batch_size=4, lr=1e-3, warmup_epochs=0.5, progress=False, seed=0, log_every=1)
    settings["plot"] = False
    whole = _task()
    fit_task(whole, _samples(whole), out_dir=tmp_path / "whole", **settings)
    stopped = _task()
    first = fit_task(stopped, _samples(stopped), out_dir=tmp_path / "split", max_steps=4, **settings)
    assert first.step == 4  # mid-way through the second epoch
    resumed = _task()  # a fresh process: the decoder, the optimizer and the position come from the checkpoint
    second = fit_task(resumed, _samples(resumed), out_dir=tmp_path / "split", resume=True, **settings)
    assert second.step == 6
    expected, got = whole.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys() and any(k.startswith("mae.decoder") for k in got)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    untouched = _task().state_dict()  # negative control: training moved the decoder
    assert any(not torch.equal(untouched[k], got[k]) for k in got if k.startswith("mae.decoder"))


@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> Path:
    """8 training + 4 validation mp4 files (12 frames, 32 px)."""
    from vitzoo.data import make_motion_dataset

    root = tmp_path_factory.mktemp("motion")
    make_motion_dataset(root, num_train=8, num_val=4, num_frames=12, size=32, progress=False)
    return root


def _sets(motion: Path, out: Path, *extra: str) -> list[str]:
    overrides = [
        f"model.name={VIDEO}", "model.options.depth=1", f"data.root={motion}", f"output_dir={out}",
        "data.frame_interval=1", "train.batch_size=4", "train.epochs=1", "train.num_workers=0",
        "train.progress=false", "train.eval_every=1", "train.log_every=1", "train.plot=false",
        "task.options.knn_k=3", "task.options.decoder_depth=1", "task.options.picture_clips=2", *extra,
    ]  # fmt: skip
    return [a for o in overrides for a in ("--set", o)]


@pytest.mark.slow
def test_pretrain_writes_a_picture_and_an_encoder_that_fine_tunes(motion, tmp_path):
    out = tmp_path / "videomae"
    assert main(["pretrain", "--config", str(RECIPE), *_sets(motion, out)]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2] and all(
        r["loss"] > 0 for r in records if r["kind"] == "train"
    )
    val = next(r for r in records if r["kind"] == "val")
    assert val["num_samples"] == 4 and 0 <= val["knn_top1"] <= 1
    assert (out / "eval" / "step_00000002" / "reconstruction.png").read_bytes().startswith(b"\x89PNG")
    best = out / "checkpoints" / "best.safetensors"
    encoder = vitzoo.load(best)
    assert type(encoder).__name__ == "VideoTransformer" and encoder.cfg.num_classes == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["task"]["name"] == "videomae"
    tuned = tmp_path / "tuned"
    sets = [
        f"model.name={VIDEO}", "model.options.depth=1", "model.options.global_pool=avg", "model.options.fc_norm=false",
        f"model.pretrained={best}", f"data.root={motion}",
        "data.frame_interval=1", "train.batch_size=4", "train.max_steps=1", "train.num_workers=0",
        "train.progress=false", "train.plot=false", "train.eval_every=100", "data.eval_clips=1", "data.eval_crops=1",
        f"output_dir={tuned}",
    ]  # fmt: skip
    assert main(["train", "--config", str(FINETUNE), *[a for s in sets for a in ("--set", s)]]) == 0
    (weights,) = (tuned / "checkpoints").glob("step_*.safetensors")
    classifier = vitzoo.load(weights)
    assert classifier.cfg.num_classes == 4
    options = dict(depth=1, global_pool="avg", fc_norm=False)  # the recipe's architecture
    start = vitzoo.create(VIDEO, num_classes=4, pretrained=str(best), **options).state_dict()  # what train starts from
    assert all(torch.equal(v, start[k]) for k, v in encoder.state_dict().items())


@pytest.mark.slow
def test_two_process_ddp_trains_encoder_and_decoder_in_step(tmp_path):
    import os
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*cmd, "-m", "tests.ssl.masked_ddp_worker", str(tmp_path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["updates"] for r in ranks] == [2, 2]  # 8 clips, 2 per process per step
    start = _task(VIDEO, "videomae").state_dict()
    for key, value in ranks[0]["state_dict"].items():
        assert torch.equal(value, ranks[1]["state_dict"][key]), key  # DDP kept the ranks identical
    moved = [k for k, v in ranks[0]["state_dict"].items() if not torch.equal(v, start[k])]
    assert any(k.startswith("model.") for k in moved) and any(k.startswith("mae.decoder.") for k in moved)
    assert (tmp_path / "checkpoints").is_dir()


@pytest.mark.slow
def test_an_image_recipe_pretrains_mae_on_an_image_folder(tmp_path):
    from vitzoo.train import load_run_config
    from vitzoo.train.recipe import train_from_config

    write_image_folders(tmp_path / "images")
    recipe = {
        "model": {"name": IMAGE, "num_classes": 0, "options": {"depth": 1}},
        "data": {"root": str(tmp_path / "images"), "layout": "folders", "train": "train", "val": "val"},
        "task": {"name": "mae", "options": {"decoder_depth": 1, "knn_k": 3, "picture_clips": 2}},
        "train": {"epochs": 1, "batch_size": 4, "progress": False, "plot": False, "num_workers": 0},
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = train_from_config(load_run_config(path))
    assert result.step == 2 and result.validations[0]["num_samples"] == 4
    assert (tmp_path / "run" / "eval" / "step_00000002" / "reconstruction.png").read_bytes().startswith(b"\x89PNG")
    assert vitzoo.load(tmp_path / "run" / "checkpoints" / "best.safetensors").cfg.num_classes == 0
