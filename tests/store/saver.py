"""A child process for the reliability tests: saves runs in a loop, printing each id once its save returned."""

import sys
from pathlib import Path

from playground.store.db import open_database
from playground.store.records import Run
from playground.store.repository import SessionStore


def main() -> None:
    path, session_id, count, tag = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    store = SessionStore(open_database(path))
    for i in range(count):
        run = store.add_run(session_id, Run(mode="prompt", model_id="m", inputs={"prompt": f"{tag}-{i}" * 20},
                                            outputs={"completions": [{"text": "x" * 500}]}))
        print(run.id, flush=True)


if __name__ == "__main__":
    main()
