"""Running a port: building it with its build system, packing a boot image, booting it under Bochs.

Imports: targets/, analysis/, upstream/ and the base layer."""
