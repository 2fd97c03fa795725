"""The command-line apps (Typer): ``affdata`` and ``affmodels``. Each command parses its
options, makes one library call and prints; nothing here touches SQL or files directly."""
