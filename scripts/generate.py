"""Generate text from a char-RNN or GPT checkpoint (`--help` lists every key):

python scripts/generate.py ckpt=<file.ckpt> prefix="time traveller " num_chars=100
python scripts/generate.py ckpt=<file.ckpt> temperature=0.8 top_k=5 seed=1
"""

import sys

from handgrad import generate
from handgrad.errors import exit_for_user_error

if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(generate.__doc__)
        raise SystemExit(0)
    try:
        print(generate.main(sys.argv[1:]))
    except Exception as exc:
        exit_for_user_error(exc)
