"""Entry point of the frozen `atlashub` executable (PyInstaller runs this file as __main__)."""

from appliance.cli import main

raise SystemExit(main())
