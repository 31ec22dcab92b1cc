import sys

from vidrelay.bench import main

sys.exit(main())
