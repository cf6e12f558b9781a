"""Feature-space diffusion augmentation and pluggable augmenters, on real MELD rows with generated audio/vision
features (the data folder has no real features): each class's features sit around their own mean."""

from __future__ import annotations

import numpy as np
import pytest

from hintgrpo.configs import AugmentArguments, QualityArguments, TeacherArguments
from hintgrpo.data import DataError, attach_features, load_task_dataset
from hintgrpo.preprocess.augment import AUGMENTERS, Augmenter, augment
from hintgrpo.preprocess.quality import score

CLASS_MEANS = {"negative": -2.0, "neutral": 0.0, "positive": 2.0}  # of audio feature 0 and vision feature 1


def class_features(labels: list[str], seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    features = []
    for label in labels:
        frames = int(rng.integers(3, 7))
        audio = rng.normal(0.0, 0.3, (frames, 4))
        vision = rng.normal(0.0, 0.3, (frames, 3))
        audio[:, 0] += CLASS_MEANS[label]
        vision[:, 1] += CLASS_MEANS[label]
        features.append({"audio": audio, "vision": vision})
    return features


@pytest.fixture(scope="module")
def meld_with_features(real_data_dir):
    rows = load_task_dataset("meld_sentiment", real_data_dir, "dev").select(range(90))
    return attach_features(rows, dict(zip(rows["id"], class_features(rows["label"]), strict=True)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: a step that already ran with the same options is loaded, not trained again."""
    return tmp_path_factory.mktemp("preprocess_cache")


def diffusion_args(strength: float, train_steps: int = 200) -> AugmentArguments:
    return AugmentArguments(
        augmenters=["diffusion"],
        diffusion_strength=strength,
        diffusion_train_steps=train_steps,
        diffusion_inference_steps=10,
        diffusion_hidden_size=64,
    )


def nearest_class(value: float) -> str:
    return min(CLASS_MEANS, key=lambda label: abs(CLASS_MEANS[label] - value))


def test_diffusion_generates_features_of_the_rows_label_bin(meld_with_features, cache):
    assert len(set(meld_with_features["label"])) == 3
    fresh = augment(meld_with_features, diffusion_args(1.0), TeacherArguments(), cache_dir=cache)
    assert len(fresh) == 2 * len(meld_with_features)
    sources = {row["id"]: row for row in meld_with_features}
    right = 0
    for row in fresh.select(range(90, 180)):
        source = sources[row["source_id"]]
        assert row["id"] == f"{source['id']}#diffusion0" and row["text"] == source["text"]
        audio, source_audio = np.asarray(row["audio"]), np.asarray(source["audio"])
        assert audio.shape == source_audio.shape  # the source's frames, shifted to the generated mean
        np.testing.assert_allclose(audio - audio.mean(0), source_audio - source_audio.mean(0), atol=1e-4)
        vision = np.asarray(row["vision"])
        right += nearest_class(audio.mean(0)[0]) == row["label"] and nearest_class(vision.mean(0)[1]) == row["label"]
    assert right >= 80  # of 90: fresh samples land in their own class


def test_lower_strength_stays_closer_to_the_source_and_scores_higher_fidelity(meld_with_features, cache):
    quality = QualityArguments()
    near = score(augment(meld_with_features, diffusion_args(0.3), TeacherArguments(), cache_dir=cache), quality)
    far = score(augment(meld_with_features, diffusion_args(1.0), TeacherArguments(), cache_dir=cache), quality)
    assert near["fidelity_audio"][:90] == near["fidelity_vision"][:90] == [1.0] * 90  # the loaded rows
    assert len(list(cache.glob("denoiser-*/config.json"))) == 1  # both strengths sample the one trained denoiser

    def mean_distance(rows):
        sources = {row["id"]: np.asarray(row["audio"]).mean(0) for row in meld_with_features}
        return np.mean([np.linalg.norm(np.asarray(r["audio"]).mean(0) - sources[r["source_id"]]) for r in rows])

    assert mean_distance(near.select(range(90, 180))) < 0.8 * mean_distance(far.select(range(90, 180)))
    for name in ("fidelity_audio", "fidelity_vision"):
        assert np.mean(near[name][90:]) > np.mean(far[name][90:])
        assert all(0.0 <= value <= 1.0 for value in far[name])


def test_a_row_without_frames_is_an_error_or_is_left_unaugmented(meld_with_features, tmp_path):
    broken = meld_with_features.map(lambda row, index: {"audio": [] if index == 5 else row["audio"]}, with_indices=True)
    args = diffusion_args(1.0, train_steps=5)
    with pytest.raises(DataError, match=r"meld.arrow, row 5, field 'audio': expected finite features"):
        augment(broken, args, TeacherArguments(), source="meld.arrow", cache_dir=tmp_path)
    kept = augment(broken, args, TeacherArguments(), cache_dir=tmp_path, skip_bad_rows=True)
    assert len(kept) == 90 + 89 and f"{broken[5]['id']}#diffusion0" not in set(kept["id"])


def test_registered_augmenters_are_fit_only_when_computed(meld_with_features, tmp_path, monkeypatch):
    fits = []

    class ReversedFrames(Augmenter):
        """Stands in for a heavy generator: loads in fit, then makes one variant per row."""

        name = "reversed_frames"

        def fit(self):
            fits.append(len(self.context.dataset))

        def variants(self, rows, row_numbers):
            return [[{"audio": row["audio"][::-1]}] for row in rows]

    monkeypatch.setitem(AUGMENTERS, "reversed_frames", ReversedFrames)
    args = AugmentArguments(augmenters=["reversed_frames"])
    first = augment(meld_with_features, args, TeacherArguments(), cache_dir=tmp_path)
    assert first["audio"][90] == meld_with_features["audio"][0][::-1] and first["augmentation"][90] == "reversed_frames"
    assert augment(meld_with_features, args, TeacherArguments(), cache_dir=tmp_path)["audio"] == first["audio"]
    assert fits == [90]  # the second run loaded the cached result
    with pytest.raises(ValueError, match="unknown augmenter"):
        augment(meld_with_features, AugmentArguments(augmenters=["nope"]), TeacherArguments())
