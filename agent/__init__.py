"""The agent: streams Spot's cameras through perception and makes the robot react, safely."""
