from rave_gui.app import main

raise SystemExit(main())
