"""Labelled synthetic frames from the sim (`spot-agent sim dataset`): randomised scenes
(`variations`), ground truth from the scene geometry (`truth`), COCO files (`coco`)."""
