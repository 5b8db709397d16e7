"""The shapes world: a seeded procedural world of simple objects and a tiny CLIP trained on it.

Classes named after real things (``classes.yaml``) can only be recognised through their
descriptions, which gives the study's effects a known answer offline.

This module is the one owner of the world's file paths; every other module imports them from here.
"""

from pathlib import Path

WORLD_DIR = Path(__file__).parent
#: the named classes, their attributes and true descriptors
CLASSES_FILE = WORLD_DIR / "classes.yaml"
#: the 8-descriptor files in the published ``{class: [descriptor, ...]}`` format (words, detailed sentences)
DESCRIPTOR_FILES = {False: WORLD_DIR / "descriptors_words.json", True: WORLD_DIR / "descriptors_sentences.json"}
#: the shipped known-answer model, loadable with ``open_clip.create_model_and_transforms("local-dir:" + ...)``
BUNDLE_DIR = WORLD_DIR / "model"
#: plain open_clip model config of the same model, registered as ``shapes-clip``
MODEL_CONFIG = BUNDLE_DIR / "shapes-clip.json"
WEIGHTS = BUNDLE_DIR / "open_clip_model.safetensors"
