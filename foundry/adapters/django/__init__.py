"""Django's side of Foundry's ports (extra ``foundry[django]``)."""
