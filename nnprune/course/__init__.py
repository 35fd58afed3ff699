"""The course: tasks marked in the library (``tasks``), the student copy (``student``), grading
(``grading``) and notebooks (``notebooks``). The instructor's copy is this repository: its
marked blocks are the solutions.
"""
