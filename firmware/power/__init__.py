# Energy planning for a supercapacitor-powered dongle: see energy.py (the manager the
# app loop asks what to do next) and costs.py (what each action costs).
