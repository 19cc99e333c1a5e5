"""Write the sample catalog (CSV and Parquet) and its reference images. Deterministic.

Run: uv run python data/make_sample_catalog.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
BG = "on a seamless white background, soft box lighting, e-commerce catalog style"

# sku, title, category, color, material, scene, resolution, aspect_ratio, priority, reference
PRODUCTS = [
    ("APP-TSHIRT-001", "crew-neck t-shirt", "apparel", "heather grey", "organic cotton",
     "folded neatly", "", "1:1", "high", ""),
    ("APP-HOODIE-002", "zip hoodie", "apparel", "forest green", "brushed fleece",
     "on an invisible mannequin", "", "4:5", "normal", ""),
    ("APP-JEANS-003", "slim-fit jeans", "apparel", "indigo", "stretch denim",
     "laid flat with the waistband open", "", "3:4", "normal", ""),
    ("APP-DRESS-004", "wrap dress", "apparel", "terracotta", "linen", "on a wooden hanger",
     "", "4:5", "high", ""),
    ("APP-SOCKS-005", "ankle socks three-pack", "apparel", "mixed pastel", "bamboo viscose",
     "fanned out", "1K", "1:1", "normal", ""),
    ("APP-BEANIE-006", "ribbed beanie", "apparel", "mustard", "merino wool",
     "slightly tilted", "1K", "1:1", "normal", ""),
    ("APP-JACKET-007", "quilted puffer jacket", "apparel", "black", "recycled nylon",
     "front view, zipped", "", "3:4", "normal", ""),
    ("APP-SCARF-008", "oversized scarf", "apparel", "camel check", "lambswool",
     "loosely draped", "", "4:5", "normal", ""),
    ("HOM-MUG-009", "stoneware mug", "home", "speckled cream", "glazed stoneware",
     "with steam rising", "", "1:1", "high", "reference/mug-sketch.png"),
    ("HOM-LAMP-010", "table lamp", "home", "brass and white", "brass, linen shade",
     "switched on, warm glow", "", "3:4", "normal", ""),
    ("HOM-THROW-011", "knitted throw blanket", "home", "oatmeal", "chunky cotton knit",
     "draped over a chair arm", "", "4:5", "normal", ""),
    ("HOM-VASE-012", "ceramic bud vase", "home", "sage green", "matte ceramic",
     "with a single dried stem", "1K", "2:3", "normal", ""),
    ("HOM-CANDLE-013", "scented candle", "home", "amber glass", "soy wax",
     "lit, lid beside it", "", "1:1", "normal", ""),
    ("HOM-CUSHION-014", "linen cushion", "home", "dusty rose", "washed linen",
     "plumped, slight angle", "", "1:1", "normal", ""),
    ("HOM-CLOCK-015", "wall clock", "home", "walnut", "walnut veneer",
     "front view, hands at ten past ten", "", "1:1", "normal", ""),
    ("HOM-RUG-016", "flatweave rug", "home", "navy and ivory", "jute and wool",
     "top-down view", "", "16:9", "normal", ""),
    ("ELE-CABLE-017", "braided USB-C cable", "electronics", "graphite", "nylon braid",
     "coiled loosely", "1K", "1:1", "normal", ""),
    ("ELE-CHARGER-018", "65W GaN charger", "electronics", "white", "polycarbonate",
     "prongs folded out", "", "1:1", "normal", ""),
    ("ELE-CASE-019", "phone case", "electronics", "clear with blue edges", "TPU",
     "back view", "", "2:3", "normal", ""),
    ("ELE-STAND-020", "laptop stand", "electronics", "space grey", "anodised aluminium",
     "with a closed laptop on it", "", "16:9", "high", ""),
    ("ELE-EARBUDS-021", "wireless earbuds", "electronics", "matte black", "plastic",
     "case open, buds beside it", "4K", "1:1", "high", ""),
    ("ELE-MOUSE-022", "ergonomic mouse", "electronics", "charcoal", "soft-touch plastic",
     "three-quarter view", "", "4:3", "normal", ""),
    ("ELE-SLEEVE-023", "laptop sleeve", "electronics", "olive", "felt and leather",
     "laptop half inserted", "", "3:2", "normal", ""),
    ("ELE-HUB-024", "USB-C hub", "electronics", "silver", "aluminium",
     "ports facing the camera", "1K", "3:2", "normal", ""),
    ("BEA-SERUM-025", "vitamin C serum", "beauty", "amber bottle", "glass dropper bottle",
     "with a drop on the pipette", "", "4:5", "high", ""),
    ("BEA-CREAM-026", "night cream jar", "beauty", "frosted white", "frosted glass",
     "lid leaning on the jar", "", "1:1", "normal", ""),
    ("BEA-LIPSTICK-027", "satin lipstick", "beauty", "brick red", "metal case",
     "uncapped, angled", "", "4:5", "normal", ""),
    ("BEA-BRUSH-028", "kabuki brush", "beauty", "rose gold", "synthetic bristles",
     "standing upright", "1K", "2:3", "normal", ""),
    ("BEA-SOAP-029", "olive oil soap bar", "beauty", "natural green", "cold-process soap",
     "on a wooden dish", "", "1:1", "normal", ""),
    ("BEA-MIST-030", "rose face mist", "beauty", "pink", "glass spray bottle",
     "with fine mist in the air", "", "2:3", "normal", ""),
    ("BEA-PALETTE-031", "eyeshadow palette", "beauty", "warm neutrals", "pressed powder",
     "open, top-down", "", "3:2", "normal", ""),
    ("KIT-KNIFE-032", "chef's knife", "kitchen", "steel and pakkawood", "Damascus steel",
     "on a slate board", "", "16:9", "high", ""),
    ("KIT-PAN-033", "cast iron skillet", "kitchen", "black", "pre-seasoned cast iron",
     "three-quarter view", "", "4:3", "normal", ""),
    ("KIT-BOARD-034", "end-grain cutting board", "kitchen", "walnut", "walnut",
     "with a sprig of rosemary", "", "3:2", "normal", "reference/board-sketch.png"),
    ("KIT-KETTLE-035", "gooseneck kettle", "kitchen", "matte white", "stainless steel",
     "side profile", "", "1:1", "normal", ""),
    ("KIT-JAR-036", "glass storage jar", "kitchen", "clear", "borosilicate glass",
     "filled with pasta", "1K", "3:4", "normal", ""),
    ("KIT-GRINDER-037", "burr coffee grinder", "kitchen", "stainless", "steel",
     "beans in the hopper", "", "3:4", "normal", ""),
    ("KIT-TOWEL-038", "tea towel set", "kitchen", "blue stripe", "cotton waffle",
     "folded in a stack", "", "1:1", "normal", ""),
    ("SPO-BOTTLE-039", "insulated water bottle", "sports", "teal", "stainless steel",
     "with condensation droplets", "", "2:3", "normal", ""),
    ("SPO-MAT-040", "yoga mat", "sports", "lilac", "natural rubber", "half rolled",
     "", "16:9", "normal", ""),
    ("SPO-BAND-041", "resistance band set", "sports", "multicolour", "latex",
     "arranged in a fan", "1K", "1:1", "normal", ""),
    ("SPO-CAP-042", "running cap", "sports", "white", "technical polyester",
     "side view", "", "1:1", "normal", ""),
    ("SPO-SHOE-043", "trail running shoe", "sports", "orange and grey", "mesh and rubber",
     "outsole tilted toward camera", "4K", "4:3", "high", ""),
    ("TOY-BLOCKS-044", "wooden building blocks", "toys", "natural and primary colours",
     "beech wood", "stacked into a small tower", "", "1:1", "normal", ""),
    ("TOY-PLUSH-045", "plush bear", "toys", "caramel", "recycled plush",
     "sitting upright", "", "4:5", "normal", ""),
    ("PET-BOWL-046", "ceramic pet bowl", "pets", "sky blue", "ceramic",
     "filled with kibble", "1K", "1:1", "normal", ""),
    ("PET-LEASH-047", "rope leash", "pets", "red", "climbing rope", "coiled",
     "", "1:1", "normal", ""),
    ("OFF-NOTEBOOK-048", "dot-grid notebook", "office", "navy", "linen hardcover",
     "with a pen on top", "", "3:4", "normal", ""),
    ("OFF-PEN-049", "fountain pen", "office", "burgundy", "resin and gold nib",
     "uncapped, nib in focus", "4K", "21:9", "normal", ""),
    ("OFF-LAMP-050", "LED desk lamp", "office", "matte black", "aluminium",
     "arm extended, light on", "", "9:16", "normal", ""),
]


# Subjects where "<color> <material> <title>" reads badly; the rest use that phrase.
SUBJECTS = {
    "APP-JEANS-003": "a pair of indigo stretch-denim slim-fit jeans",
    "APP-SOCKS-005": "a three-pack of pastel bamboo-viscose ankle socks",
    "HOM-MUG-009": "a speckled cream glazed stoneware mug",
    "HOM-LAMP-010": "a brass table lamp with a white linen shade",
    "HOM-THROW-011": "an oatmeal chunky cotton-knit throw blanket",
    "HOM-VASE-012": "a sage green matte ceramic bud vase",
    "HOM-CANDLE-013": "a soy wax scented candle in an amber glass jar",
    "HOM-CUSHION-014": "a dusty rose washed linen cushion",
    "HOM-CLOCK-015": "a walnut veneer wall clock",
    "HOM-RUG-016": "a navy and ivory jute-and-wool flatweave rug",
    "ELE-CABLE-017": "a graphite braided nylon USB-C cable",
    "ELE-CASE-019": "a clear TPU phone case with blue edges",
    "ELE-EARBUDS-021": "a pair of matte black wireless earbuds",
    "ELE-SLEEVE-023": "an olive felt laptop sleeve with leather trim",
    "BEA-SERUM-025": "a vitamin C serum in an amber glass dropper bottle",
    "BEA-CREAM-026": "a night cream in a frosted white glass jar",
    "BEA-LIPSTICK-027": "a brick red satin lipstick in a metal case",
    "BEA-BRUSH-028": "a rose gold kabuki brush with synthetic bristles",
    "BEA-SOAP-029": "a natural green cold-process olive oil soap bar",
    "BEA-MIST-030": "a rose face mist in a pink glass spray bottle",
    "BEA-PALETTE-031": "a warm-neutrals pressed-powder eyeshadow palette",
    "KIT-KNIFE-032": "a Damascus steel chef's knife with a pakkawood handle",
    "KIT-PAN-033": "a black pre-seasoned cast iron skillet",
    "KIT-BOARD-034": "a walnut end-grain cutting board",
    "KIT-JAR-036": "a clear borosilicate glass storage jar",
    "KIT-GRINDER-037": "a stainless steel burr coffee grinder",
    "KIT-TOWEL-038": "a set of blue-striped cotton waffle tea towels",
    "SPO-SHOE-043": "an orange and grey mesh trail running shoe with a rubber outsole",
    "TOY-BLOCKS-044": "a set of beech wood building blocks in natural and primary colours",
    "TOY-PLUSH-045": "a caramel plush bear made from recycled fibres",
    "PET-BOWL-046": "a sky blue ceramic pet bowl",
    "PET-LEASH-047": "a red climbing-rope dog leash",
    "OFF-PEN-049": "a burgundy resin fountain pen with a gold nib",
}


def _subject(sku: str, title: str, color: str, material: str) -> str:
    if sku in SUBJECTS:
        return SUBJECTS[sku]
    phrase = f"{color} {material} {title}"
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def _row(*fields: str) -> dict:
    """One catalog row from its ten columns in PRODUCTS order."""
    sku, title, category, color, material, scene, resolution, ratio, priority, ref = fields
    prompt = f"Studio product photo of {_subject(sku, title, color, material)}, {scene}, {BG}"
    return {"sku": sku, "title": title, "category": category, "color": color,
            "material": material, "prompt": prompt, "resolution": resolution,
            "aspect_ratio": ratio, "priority": priority, "reference_image": ref}


def rows() -> list[dict]:
    """50 valid products with 7 rightly rejected rows spread among them."""
    good = [_row(*p) for p in PRODUCTS]
    bad = {
        5: _row("", "no-show sock five-pack", "apparel", "white", "cotton", "fanned out",
                "", "1:1", "normal", ""),
        12: {**_row("HOM-TRAY-900", "serving tray", "home", "natural oak", "solid oak", "",
                    "1K", "3:2", "normal", ""), "prompt": ""},
        18: {**_row(*PRODUCTS[2]), "title": "slim-fit jeans (re-listed)",
             "prompt": f"Studio product photo of folded indigo slim-fit jeans, {BG}"},
        25: _row("ELE-SPEAKER-901", "portable Bluetooth speaker", "electronics", "slate blue",
                 "fabric-wrapped", "three-quarter view", "8K", "1:1", "normal", ""),
        31: _row("BEA-COMB-902", "wide-tooth comb", "beauty", "tortoiseshell",
                 "cellulose acetate", "lying diagonally", "", "7:3", "normal", ""),
        38: {**_row(*PRODUCTS[33]), "sku": "../etc/passwd"},
        44: _row("HOM-TEAPOT-903", "teapot", "home", "speckled cream", "stoneware",
                 "lid on, spout to the left", "", "1:1", "normal",
                 "reference/missing-teapot.png"),
    }
    out: list[dict] = []
    for index, row in enumerate(good):
        if index in bad:
            out.append(bad[index])
        out.append(row)
    return out


def _sketch(path: Path, shape: str) -> None:
    img = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(img)
    if shape == "mug":
        draw.rounded_rectangle((70, 70, 170, 200), 12, outline="black", width=5)
        draw.arc((150, 100, 210, 170), -90, 90, fill="black", width=5)
    else:
        draw.rectangle((40, 90, 216, 170), outline="saddlebrown", width=6)
        for x in range(60, 216, 30):
            draw.line((x, 90, x, 170), fill="peru", width=2)
    img.save(path, format="PNG")


def main() -> None:
    (HERE / "reference").mkdir(exist_ok=True)
    _sketch(HERE / "reference" / "mug-sketch.png", "mug")
    _sketch(HERE / "reference" / "board-sketch.png", "board")
    frame = pd.DataFrame(rows())
    frame.to_csv(HERE / "sample_catalog.csv", index=False)
    frame.replace("", None).to_parquet(HERE / "sample_catalog.parquet", index=False)
    print(f"wrote {len(frame)} rows")


if __name__ == "__main__":
    main()
