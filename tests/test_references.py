"""The FID reference points: the nearest-neighbour completion and the real-image set."""

import torch

from conftest import DATA_DIR
from datamodules.pixel_files import read_images, read_palette
from evaluation.references import nearest_neighbour_completions, reference_sets

# Four colours: white, black, and two greys one shade apart.
PALETTE = torch.tensor([[255, 255, 255], [0, 0, 0], [128, 128, 128], [129, 129, 129]], dtype=torch.uint8)


def test_nearest_neighbour_copies_the_bottom_of_the_training_image_with_the_closest_top_in_rgb():
    train = torch.tensor([
        [0, 2, 1, 1, 1, 1],  # top one pixel off the first query, but grey against black
        [0, 3, 3, 2, 2, 2],  # top two pixels off, each by one shade
        [0, 3, 3, 3, 3, 3],  # the same top again: ties go to the earlier image
    ])  # fmt: skip
    query = torch.tensor([[0, 2, 2, 0, 0, 0], [0, 0, 1, 3, 3, 3]])
    completed = nearest_neighbour_completions(query, train, prefix_len=3, palette=PALETTE)
    # Counting differing indices would pick image 0 for the first query; RGB distance picks image 1.
    assert completed.tolist() == [[0, 2, 2, 2, 2, 2], [0, 0, 1, 1, 1, 1]]


def test_on_the_course_data_it_keeps_dev_tops_and_matches_a_brute_force_search():
    palette = read_palette(DATA_DIR / "colormap.txt")
    train, dev = read_images(DATA_DIR / "train.txt"), read_images(DATA_DIR / "dev.txt")[:10]
    completed = nearest_neighbour_completions(dev, train, 240, palette)
    assert torch.equal(completed[:, :240], dev[:, :240])
    colours = palette.long()
    for image, done in zip(dev, completed, strict=True):
        distances = ((colours[train[:, :240]] - colours[image[:240]]) ** 2).sum((1, 2))
        assert torch.equal(done[240:], train[distances.argmin(), 240:])


def test_reference_sets_use_only_training_images_and_the_reference_tops():
    palette = read_palette(DATA_DIR / "colormap.txt")
    train, dev = read_images(DATA_DIR / "train.txt"), read_images(DATA_DIR / "dev.txt")
    sets = reference_sets(dev, train, 240, palette)
    assert set(sets) == {"nearest", "real"}
    assert torch.equal(sets["real"], train[:80])
    bottoms = {tuple(row) for row in train[:, 240:].tolist()}
    assert all(tuple(row) in bottoms for row in sets["nearest"][:, 240:].tolist())
