#!/usr/bin/env python3
"""Writes samples/corpus.txt, the engine's built-in sample corpus: about 40 KB of plain English prose,
generated deterministically from a small hand-written grammar (no copied text). Run it from anywhere:
    python3 samples/corpus_generate.py
"""
import os
import random

rng = random.Random(20231128)

SUBJECTS = ["the miller", "the old sailor", "a young clerk", "the baker", "my neighbour", "the teacher",
            "a tired engineer", "the gardener", "the ferryman", "a quiet student", "the shepherd",
            "the night watchman", "her brother", "the carpenter", "a travelling musician", "the doctor"]
VERBS = ["carried", "mended", "painted", "counted", "watched", "opened", "cleaned", "found", "sold",
         "measured", "moved", "wrote about", "planted", "repaired", "noticed", "described"]
OBJECTS = ["the wooden boat", "a basket of apples", "the long letter", "the broken clock", "a pile of stones",
           "the blue door", "the narrow bridge", "a bag of flour", "the garden wall", "the little window",
           "a box of nails", "the heavy wheel", "the morning bread", "an old map", "the iron gate",
           "a row of lamps"]
PLACES = ["by the river", "near the market", "behind the mill", "on the hill", "in the small square",
          "at the edge of the forest", "under the bridge", "beside the harbour", "in the warm kitchen",
          "along the road to town", "inside the station", "across the field"]
TIMES = ["In the morning", "Before noon", "Late in the evening", "On a cold day", "After the rain",
         "Every spring", "At first light", "During the long winter", "On market day", "When the bells rang"]
ADJECTIVES = ["quiet", "bright", "cold", "busy", "slow", "warm", "green", "grey", "calm", "windy"]
NOUNS = ["town", "valley", "harbour", "village", "road", "market", "river", "school", "station", "square"]
REASONS = ["because the work was not finished", "so that nothing would be lost", "since the weather was fair",
           "while the others were asleep", "as the sun went down", "although nobody had asked",
           "before the cart arrived", "because it was the custom"]
THOUGHTS = ["It was a good day for work.", "Nobody spoke for a while.", "The air smelled of bread and rain.",
            "Everyone agreed that it had been done well.", "The children laughed and ran home.",
            "Somewhere a dog was barking.", "The lamps were lit one by one.", "It would be ready by the next week."]


def sentence():
    kind = rng.randrange(6)
    s, v, o, p = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES)
    if kind == 0:
        return f"{rng.choice(TIMES)}, {s} {v} {o} {p}."
    if kind == 1:
        return f"{s.capitalize()} {v} {o} {rng.choice(REASONS)}."
    if kind == 2:
        return f"The {rng.choice(NOUNS)} was {rng.choice(ADJECTIVES)}, and {s} {v} {o}."
    if kind == 3:
        return f"{s.capitalize()} said that {rng.choice(SUBJECTS)} had {v} {o} {p}."
    if kind == 4:
        return rng.choice(THOUGHTS)
    return f"{rng.choice(TIMES)}, the {rng.choice(NOUNS)} was {rng.choice(ADJECTIVES)} and {s} stayed {p}."


def main():
    out = []
    size = 0
    while size < 40000:
        paragraph = " ".join(sentence() for _ in range(rng.randrange(3, 8)))
        out.append(paragraph)
        size += len(paragraph) + 2
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.txt")
    with open(path, "w", encoding="ascii") as f:
        f.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()
