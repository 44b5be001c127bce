"""Run the console on the tone model in a real uvicorn process (for the crash test).

    python tests/app/fake_server.py PORT DATA_DIR
"""

import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).parent))
from fakes import ToneModel  # noqa: E402

from urgence.app.server import create_app  # noqa: E402

if __name__ == "__main__":
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    uvicorn.run(create_app(ToneModel(), data_dir=data_dir), host="127.0.0.1", port=port,
                log_level="warning")
