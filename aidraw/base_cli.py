"""`aidraw base register`: an admin makes a configured base model visible as a public, system-owned ckp model
(command/base_models.py, docs/generation.md "Base models"). It speaks to the event log directly, as
`aidraw user create` does: whoever can run it on the server is an operator."""

from __future__ import annotations

import sys

from infra.settings import Settings


def base_register(settings: Settings, name: str, capability: str, base_model: str, trigger_words: str) -> int:
    from aidraw.endpoints import resolve
    from command.app import CommandApp
    from command.base_models import register_base
    from infra.errors import ServiceError

    ends = resolve(settings)
    app = CommandApp(settings, ends.nats_url)
    try:
        model, _ = register_base(app, name=name, capability=capability, base_model=base_model,
                                 trigger_words=trigger_words)
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        app.close()
    print(f"registered base model {model.name!r} (model id {model.number}) for capability {capability}: runners "
          f"serve it with AIDRAW_RUNNER_CAPABILITIES={capability}=<path>")
    return 0
