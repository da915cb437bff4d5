# Host compatibility shims for micropython-lib modules (see README.md in this folder).
