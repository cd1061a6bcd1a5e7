"""A user's own model: an ONNX encoder exported here from a real torch network (--model
onnx:PATH), and a model another package registers through the repsample.models entry points."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from conftest import TreeFactory, make_image
from repsample.cli import cli
from repsample.config import SelectConfig
from repsample.embedding.decode import decode_image
from repsample.embedding.embed import Embedder
from repsample.models import get_model, model_key

SELECT = ["--per-class", "6", "--k-min", "2", "--k-max", "3", "-q", "--device", "cpu"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def export(module: nn.Module, path: Path, size: tuple[int, int], *, dynamic_size: bool = False,
           fixed_batch: bool = False) -> Path:
    """Export a torch module to ONNX as a user would (size: width, height)."""
    axes: dict[str, dict[int, str]] = {"pixels": {} if fixed_batch else {0: "batch"}}
    if dynamic_size:
        axes["pixels"].update({2: "height", 3: "width"})
    width, height = size
    torch.onnx.export(module.eval(), (torch.zeros(1, 3, height, width),), str(path),
                      input_names=["pixels"], output_names=["features"],
                      dynamic_axes={k: v for k, v in axes.items() if v}, opset_version=17, dynamo=False)
    return path


def tiny_net(seed: int) -> nn.Module:
    """A small real convolutional network whose output is a feature map (N, 16, H', W')."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2)).eval()


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def choices(out: Path) -> list[tuple[str, ...]]:
    return [(r["path"], r["status"], r["cluster"], r["rank"]) for r in manifest(out)]


def flat(tree: object, at: str = "") -> dict[str, float]:
    """The numbers of a nested JSON object, by their path."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{at}/{key}").items()}
    return {at: float(tree)} if isinstance(tree, (int, float)) else {}


def test_onnx_encoder_selects_as_the_builtin_model(make_tree: TreeFactory, tmp_path: Path,
                                                  cache_path: Path) -> None:
    """ResNet18 (random weights) exported to ONNX by the user and run as onnx:PATH gives the
    built-in resnet18's vectors, so the same manifest, evaluation and report."""
    root = make_tree({"train/a": 14, "train/b": 12, "test/a": 5, "test/b": 5}, ext=".png")
    module = get_model("resnet18").build("random")
    model = export(module, tmp_path / "r18.onnx", (224, 224))

    outs = {}
    for name, args in (("builtin", ["--model", "resnet18", "--weights", "random"]),
                       ("onnx", ["--model", f"onnx:{model}"])):
        outs[name] = tmp_path / name
        code, text = run("select", str(root), str(outs[name]), *SELECT, *args, "--cache", str(cache_path))
        assert code == 0, text
        code, text = run("evaluate", str(outs[name]))
        assert code == 0, text
    assert choices(outs["onnx"]) == choices(outs["builtin"])
    assert (outs["onnx"] / "report.html").is_file()
    scores = [json.loads((outs[n] / "evaluation.json").read_text()) for n in ("builtin", "onnx")]
    assert flat(scores[1]["groups"]) == pytest.approx(flat(scores[0]["groups"]), rel=1e-3)

    record = json.loads((outs["onnx"] / "run.json").read_text())["model"]
    assert record["name"] == f"onnx:{model}" and record["dim"] == 512 and record["backend"] == "onnx"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    assert record["cache_key"].startswith(f"onnx-sha256-{digest}-") and str(model) not in record["cache_key"]


def test_feature_map_fixed_batch_and_json_preprocessing(tmp_path: Path) -> None:
    """A feature-map model exported with a fixed batch of 1 and a dynamic input size, its
    preprocessing in the JSON beside it: the vectors are the torch network's, averaged."""
    net = tiny_net(0)
    model = export(net, tmp_path / "tiny.onnx", (40, 40), dynamic_size=True, fixed_batch=True)
    (tmp_path / "tiny.json").write_text(json.dumps(
        {"input_size": [48, 32], "resize": "crop", "mean": [0.5, 0.5, 0.5], "std": 0.25}))
    spec = get_model(f"onnx:{model}")
    pre = spec.preprocess
    assert (spec.dim, pre.size, pre.crop, pre.resample, pre.std) == (16, (48, 32), True, "bicubic",
                                                                      (0.25, 0.25, 0.25))
    paths = [make_image(tmp_path / f"{i}.png", i, size=(90, 40 + 20 * i)) for i in range(3)]
    pixels = np.stack([pre(decode_image(p, pre.draft_size)) for p in paths])
    assert pixels.shape == (3, 3, 32, 48)
    ours = Embedder(spec)(pixels)
    with torch.inference_mode():
        reference = net(torch.from_numpy(pixels)).mean((2, 3)).numpy()
    assert np.allclose(ours, reference, atol=1e-5)

    # Options win over the JSON; a different input is a different cache key.
    flagged = Embedder(SelectConfig(model=f"onnx:{model}", input_size="40", resize="stretch").model_spec())
    assert flagged.spec.preprocess.size == (40, 40) and not flagged.spec.preprocess.crop
    assert flagged.key != model_key(spec, "default")


class TwoHeads(nn.Module):
    """Tokens (N, T, 16) and a pooled embedding (N, 16), as vision transformers export them."""

    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_net(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.body(x).flatten(2).transpose(1, 2)
        return tokens, tokens.amax(1)


def test_output_choice_embedding_first_tokens_averaged(tmp_path: Path) -> None:
    net = TwoHeads().eval()
    model = tmp_path / "vit.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(model), input_names=["pixels"],
                      output_names=["tokens", "pooled"], opset_version=17, dynamo=False,
                      dynamic_axes={"pixels": {0: "n"}, "tokens": {0: "n"}, "pooled": {0: "n"}})
    batch = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        tokens, pooled = net(torch.from_numpy(batch))
    default = Embedder(f"onnx:{model}")
    assert default.spec.onnx is not None and default.spec.onnx.output == "pooled"
    assert np.allclose(default(batch), pooled.numpy(), atol=1e-5)
    (tmp_path / "vit.json").write_text('{"output": "tokens"}')
    averaged = Embedder(f"onnx:{model}")
    assert np.allclose(averaged(batch), tokens.mean(1).numpy(), atol=1e-5)
    assert averaged.key != default.key


def test_cache_key_is_the_files_content_not_its_place(tmp_path: Path) -> None:
    first = export(tiny_net(0), tmp_path / "m.onnx", (32, 32))
    moved = tmp_path / "elsewhere.onnx"
    shutil.copy(first, moved)
    other = export(tiny_net(1), tmp_path / "other.onnx", (32, 32))
    key = model_key(get_model(f"onnx:{first}"), "default")
    assert model_key(get_model(f"onnx:{moved}"), "default") == key
    assert model_key(get_model(f"onnx:{other}"), "default") != key


def test_weights_in_an_external_data_file_are_in_the_key(tmp_path: Path) -> None:
    """Models over 2 GB keep their weights beside the graph: changing them changes the key."""
    import onnx

    graph = onnx.load(str(export(tiny_net(0), tmp_path / "plain.onnx", (32, 32))))
    model = tmp_path / "big.onnx"
    onnx.save_model(graph, str(model), save_as_external_data=True, location="big.weights",
                    size_threshold=0)
    key = model_key(get_model(f"onnx:{model}"), "default")
    batch = np.ones((1, 3, 32, 32), np.float32)
    before = Embedder(f"onnx:{model}")(batch)
    weights = bytearray((tmp_path / "big.weights").read_bytes())
    weights[:4] = np.float32(3.0).tobytes()  # the first weight of the first convolution
    (tmp_path / "big.weights").write_bytes(bytes(weights))
    after = Embedder(f"onnx:{model}")
    assert model_key(after.spec, "default") != key and not np.allclose(after(batch), before)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--model", "onnx:{dir}/nothing.onnx"], ["--model", "no such ONNX file"]),
        (["--model", "onnx:{dir}/junk.onnx"], ["--model", "not an ONNX model"]),
        (["--model", "onnx:{dir}/dynamic.onnx"], ["input size is not fixed", "--input-size"]),
        (["--model", "onnx:{dir}/fixed.onnx", "--input-size", "64"], ["--input-size 64x64", "32x32"]),
        (["--model", "onnx:{dir}/fixed.onnx", "--std", "0,1,1"], ["--std must be three positive"]),
        (["--model", "onnx:{dir}/fixed.onnx", "--backend", "torch"], ["--backend", "onnx:PATH"]),
        (["--model", "onnx:{dir}/fixed.onnx", "--weights", "random"], ["--weights", "onnx:PATH"]),
        (["--mean", "0.5"], ["--mean applies to onnx:PATH models only"]),
    ],
)
def test_onnx_mistakes_are_one_line(make_tree: TreeFactory, tmp_path: Path, extra: list[str],
                                    needles: list[str]) -> None:
    root = make_tree({"a": 3})
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    export(tiny_net(0), tmp_path / "dynamic.onnx", (32, 32), dynamic_size=True)
    export(tiny_net(0), tmp_path / "fixed.onnx", (32, 32))
    args = [a.replace("{dir}", str(tmp_path)) for a in extra]
    code, out = run("select", str(root), str(tmp_path / "out"), *args, "--cache", str(tmp_path / "c"))
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), out
    for needle in needles:
        assert needle in lines[0], (needle, out)
    assert not (tmp_path / "out").exists()


PLUGIN = '''
"""A third party's model package: a small real network, registered by entry point."""
import torch
from torch import nn

from repsample.models import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Preprocess


def build(weights):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 24, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten())
    return net.eval()


SPEC = ModelSpec(name="plug-net", summary="a plugin's network, 24-d", dim=24,
                 preprocess=Preprocess((64, 64), IMAGENET_MEAN, IMAGENET_STD), build=build,
                 default_weights="plug-seed0", offline=True)
'''


def test_a_package_registers_a_model_by_entry_point(make_tree: TreeFactory, tmp_path: Path) -> None:
    """An installed distribution (its .dist-info on sys.path) declaring repsample.models entry
    points: the good one is listed and selects; a broken one is a warning, nothing more."""
    site = tmp_path / "site"
    (site / "plugnet-0.1.dist-info").mkdir(parents=True)
    (site / "plugnet.py").write_text(textwrap.dedent(PLUGIN))
    (site / "plugnet-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: plugnet\nVersion: 0.1\n")
    (site / "plugnet-0.1.dist-info" / "entry_points.txt").write_text(
        "[repsample.models]\nplug-net = plugnet:SPEC\nbroken-net = plugnet_missing:SPEC\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def repsample(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "repsample", *args], capture_output=True,
                              text=True, env=env, timeout=300)

    listed = repsample("models")
    assert listed.returncode == 0, listed.stderr
    assert "plug-net" in listed.stdout and "a plugin's network" in listed.stdout
    assert "efficientnet-lite0" in listed.stdout and "broken-net" not in listed.stdout
    assert "broken-net" in listed.stderr and "plugnet_missing" in listed.stderr

    root = make_tree({"a": 10, "b": 9})
    out = tmp_path / "out"
    done = repsample("select", str(root), str(out), "--model", "plug-net", *SELECT, "--no-report",
                     "--cache", str(tmp_path / "c.sqlite"))
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "run.json").read_text())["model"]
    assert record["name"] == "plug-net" and record["dim"] == 24
    assert record["cache_key"].startswith("plug-net|r1|plug-seed0|")
    assert sum(r["status"] == "selected" for r in manifest(out)) == 12
