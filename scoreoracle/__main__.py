from .training.cli import main
import sys
sys.exit(main())
