"""`python -m vlkd_cli.torchrun ...`: torch.distributed.run (torchrun, same arguments), ending
without the interpreter's last garbage collection over torch's objects, as `vlkd` itself does
(see :func:`vlkd_cli.app.run`): about 1.5 s less per multi-process command."""
import gc

from torch.distributed.run import main

if __name__ == "__main__":
    try:
        main()
    finally:
        gc.freeze()
