"""data.py -> model.py (tiny widths, the tiny R-50.pkl) -> evaluation.py -> metrics.py: a few SGD steps on
tiny images, then their detections as COCO results."""

import pytest
import torch
from test_model import tiny_model

import data
import metrics
import model


def test_tiny_model_fits_four_images_and_is_evaluated(tiny_data):
    splits = data.coco_splits(tiny_data)
    train = data.CocoDetection(splits["train"], train=True)
    torch.manual_seed(0)
    m = tiny_model()
    model.load_c2_backbone(m.backbone.body, data.read_detectron_weights(f"{tiny_data}/R-50.pkl"))
    images, targets = data.collate([train[i] for i in range(4)])
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
    m.train()
    history = []
    for step in range(24):
        for group in opt.param_groups:  # linear warmup from 1/3, as the reference's
            group["lr"] = 0.02 * min(1.0, 1 / 3 + 2 / 3 * step / 10)
        losses = m(images, targets)
        loss = sum(losses.values())
        assert torch.isfinite(loss), (step, losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert history[0] == pytest.approx(2.9, abs=0.6)  # CE ln 4 + BCE ln 2 + mask ~ln 2: a sane start
    assert sum(history[-4:]) / 4 < 0.5 * history[0]
    m.eval()
    with torch.no_grad():
        outputs = m(images)
    image_ids = [t["image_id"] for t in targets]
    results = metrics.coco_results(model.to_detections(image_ids, outputs), train.category_map.coco_ids)
    assert results and {r["image_id"] for r in results} <= set(image_ids)
    assert {r["category_id"] for r in results} <= {1, 3, 18}
    assert all(r["segmentation"]["size"] == list(img.shape[1:]) for r in results
               for img, i in zip(images, image_ids) if r["image_id"] == i)
