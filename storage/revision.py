"""Generate a new Alembic revision from the model changes: ``python -m storage.revision "message"``."""

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from storage.db import Database, alembic_config


def main() -> int:
    message = " ".join(sys.argv[1:]) or "schema change"
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'rev.db'}")
        db.migrate()
        config = alembic_config(db.url)
        versions = sorted(
            (Path(__file__).parent / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
        )
        next_id = f"{int(versions[-1].name[:4]) + 1:04d}" if versions else "0001"
        script = command.revision(config, message=message, autogenerate=True, rev_id=next_id)
    # Generated code follows the project's style like the rest of the tree.
    paths = [s.path for s in (script if isinstance(script, list) else [script]) if s is not None]
    for args in (["check", "--fix", "-q"], ["format", "-q"]):
        subprocess.run([sys.executable, "-m", "ruff", *args, *paths], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
