"""`spot-agent eval`: the agent's own perception measured on labelled footage.

dataset (COCO JSON) and yolo (YOLO folders) read labels into plain data; inference runs the
agent's `Perceiver` on every image in a process pool; metrics scores the detections (COCO AP by
pycocotools, recall/precision at the agent's thresholds by `perception.evaluate`'s matcher);
report writes report.json, the PR curves and report.html; command is the CLI.
"""
