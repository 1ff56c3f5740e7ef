import sys

from stylegan_eval.cli import main

sys.exit(main())
