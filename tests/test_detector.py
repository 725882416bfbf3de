"""The frozen attribute detector: accurate on rendered clips of every pattern, and refusing negatives."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from hivae.data import PATTERNS, MovingShapes
from hivae.shape_detector import ATTRIBUTES, attribute_accuracy, detect_attributes


@pytest.mark.parametrize("size", [32, 64])
def test_detector_reads_all_four_attributes_of_rendered_clips(size):
    data = MovingShapes(160, 16, size, seed=77, patterns=PATTERNS, path_variation=1.0)
    items = [data[i] for i in range(len(data))]
    videos = torch.stack([item["video"] for item in items])
    accuracy = attribute_accuracy(videos, [tuple(item[k] for k in ATTRIBUTES) for item in items])
    assert all(accuracy[key] >= 0.98 for key in ATTRIBUTES), accuracy
    legacy = attribute_accuracy(videos, [tuple(item[k] for k in ATTRIBUTES[:3]) for item in items])
    assert set(legacy) == {"shape", "colour", "motion", "all"}  # 3-attribute targets (the steady domain) still work


@pytest.mark.parametrize("pattern", PATTERNS)
def test_detector_tells_each_pattern_from_the_others(pattern):
    data = MovingShapes(12, 16, 32, seed=5, patterns=(pattern,), path_variation=1.0)
    found = [detect_attributes(data[i]["video"]).pattern for i in range(12)]
    assert found == [pattern] * 12  # so a clip with another pattern than its label is scored wrong


def test_detector_refuses_blurred_empty_and_two_object_clips():
    data = MovingShapes(10, 16, 32, seed=3, patterns=PATTERNS)
    for i in range(10):
        video = data[i]["video"]
        blurred = torch.from_numpy(ndimage.gaussian_filter(video.numpy(), (0, 0, 1.5, 1.5))).float()
        found = detect_attributes(blurred)
        assert found.shape is None and found.pattern is None and found.reason == "blurred"
    empty = detect_attributes(torch.full((3, 16, 32, 32), -1.0))
    assert empty.as_tuple() == (None, None, None, None) and empty.reason == "empty"
    two = MovingShapes(10, 16, 64, seed=4, second_object_prob=1.0, radius_range=(0.08, 0.1))
    refused = [detect_attributes(two[i]["video"]).reason == "several objects" for i in range(10)]
    assert np.mean(refused) >= 0.8  # the rest overlap for most of the clip


def test_objects_over_photo_backgrounds_are_read_against_the_true_background():
    """Over a photo, the clip's median colour is no background: the detector then fails; given each clip's true
    background (`MovingShapes.background`) it reads the objects, and still refuses a blurred clip."""
    import torch

    from hivae.data import MovingShapes
    from hivae.shape_detector import attribute_accuracy

    data = MovingShapes(48, 16, 32, seed=3, backgrounds=("photo",), patterns=PATTERNS, path_variation=1.0)
    items = [data[i] for i in range(48)]
    videos = torch.stack([item["video"] for item in items])
    targets = [(item["shape"], item["colour"], item["motion"], item["pattern"]) for item in items]
    backgrounds = torch.stack([data.background(i) for i in range(48)])
    assert backgrounds.std() > 0.05 and not torch.equal(backgrounds[0], backgrounds[1])  # real, varied photos
    assert attribute_accuracy(videos, targets)["all"] < 0.5
    assert attribute_accuracy(videos, targets, backgrounds)["all"] >= 0.9
    blurred = torch.nn.functional.avg_pool3d(videos, (1, 3, 3), 1, (0, 1, 1))
    assert attribute_accuracy(blurred, targets, backgrounds)["all"] < 0.1
