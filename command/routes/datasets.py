"""POST/PATCH/DELETE /api/datasets, each also under the original spec's alias /api/dataset."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command.datasets import Dataset, change_dataset, create_dataset, delete_dataset
from command.routes.deps import Commands, IdempotencyKey
from command.routes.idempotent import created_again
from events.store.protocol import DuplicateRequest
from infra.auth import RequiredUser
from infra.http import ObjectId, written
from infra.schemas_catalog import DatasetIn, DatasetOut, DatasetPatch, Items

router = APIRouter(tags=["datasets"])


def dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut(id=dataset.number, name=dataset.name, items=Items(**dataset.items), public=dataset.public,
                      user_id=dataset.user_id, created_at=dataset.created_on, updated_at=dataset.modified_on)


@router.post("/api/datasets", status_code=201, response_model=DatasetOut)
@router.post("/api/dataset", status_code=201, response_model=DatasetOut)
def post_dataset(body: DatasetIn, response: Response, app: Commands, actor: RequiredUser,
                 key: IdempotencyKey) -> DatasetOut:
    """Create a training set (private unless `public: true`). Images and featured collections named in
    `items` must exist and be visible to you; URLs must be http(s) or this service's `/api/blobs/...`."""
    try:
        dataset, seq = create_dataset(app, actor, body.name, body.items.model_dump(), body.public,
                                      idempotency_key=key)
    except DuplicateRequest as dup:
        dataset, seq = created_again(app, Dataset, "dataset", actor, dup, key)
    written(response, seq)
    response.headers["Location"] = f"/api/datasets/{dataset.number}"
    return dataset_out(dataset)


@router.patch("/api/datasets/{dataset_id}", response_model=DatasetOut)
@router.patch("/api/dataset/{dataset_id}", response_model=DatasetOut)
def patch_dataset(dataset_id: ObjectId, body: DatasetPatch, response: Response, app: Commands,
                  actor: RequiredUser) -> DatasetOut:
    """Change the fields sent (owner or admin); `items` replaces all items."""
    changes = body.sent()
    if body.items is not None:
        changes["items"] = body.items.model_dump()
    dataset, seq = change_dataset(app, actor, dataset_id, **changes)
    written(response, seq)
    return dataset_out(dataset)


@router.delete("/api/datasets/{dataset_id}", status_code=204)
@router.delete("/api/dataset/{dataset_id}", status_code=204)
def remove_dataset(dataset_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Delete a dataset (owner or admin)."""
    out = Response(status_code=204)
    written(out, delete_dataset(app, actor, dataset_id))
    return out
