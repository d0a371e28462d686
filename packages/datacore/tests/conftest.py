import sys
from pathlib import Path

# toygen.py lives here; worker processes inherit sys.path.
sys.path.insert(0, str(Path(__file__).parent))
