"""The app running, and what migrations do to it: the app served by waitress
(appserver), its users (traffic), each statement's locks (locktrace), lab 04's
lock observatory (observatory), and both on one timeline (timeline)."""
