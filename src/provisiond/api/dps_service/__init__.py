"""The Azure DPS service API: enrollments, enrollment groups, registration states."""
