"""Each run of this example's tests starts from an empty SQLite file of its own, unless
``SHOP_DATABASE_URL`` names a database: the shop's file in this folder is the app's, not the
tests'."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

if "SHOP_DATABASE_URL" not in os.environ:
    _folder = tempfile.mkdtemp(prefix="foundry-shop-")
    atexit.register(shutil.rmtree, _folder, True)
    os.environ["SHOP_DATABASE_URL"] = f"sqlite:///{_folder}/shop.sqlite3"
