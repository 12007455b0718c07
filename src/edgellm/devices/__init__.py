"""Resources on devices: this host measured, the fleet described, projected and reached.

- :mod:`.fleet`: the device profile schema and the fleet's YAML profiles (``profiles/``)
- :mod:`.host`: this machine read once (``/proc``, ISA, RAPL); :mod:`.host_profile`: the same as a device profile
- :mod:`.bench`: speed and memory measured as llama-bench measures them
- :mod:`.speed_ratio`: one file's speed over another's, timed in alternation (a ratio without the host's drift)
- :mod:`.energy`: energy per token, measured from counters or estimated (labelled)
- :mod:`.roofline`: the projection of a variant from this host onto a device
- :mod:`.fleet_table`: every variant on every device, measured or projected, and accessibility
- :mod:`.bundle`: deployment bundles and the aarch64 build's check under qemu
- :mod:`.runners`: local, ssh and adb runners that bring real device measurements back
"""
