"""Regenerates vlkd_core/data/prompts/*.json (run from the repository root; needs open_clip).

ImageNet names/templates are read from open_clip.zero_shot_metadata; the other sets are written
out here and cross-checked (counts, order, the ELEVATER CIFAR-100 name set)."""
import json, open_clip.zero_shot_metadata as z
from torchvision.models import ResNet18_Weights
out = "vlkd_core/data/prompts/"
def dump(name, classnames, templates, source, unique=True):
    assert not unique or len(set(classnames)) == len(classnames), name
    assert all("{}" in t for t in templates), name
    json.dump({"name": name, "classnames": classnames, "templates": templates, "source": source},
              open(out + name + ".json", "w"), indent=1, ensure_ascii=False)
    print(name, len(classnames), len(templates))
cifar_t = ['a photo of a {}.', 'a blurry photo of a {}.', 'a black and white photo of a {}.', 'a low contrast photo of a {}.', 'a high contrast photo of a {}.', 'a bad photo of a {}.', 'a good photo of a {}.', 'a photo of a small {}.', 'a photo of a big {}.', 'a photo of the {}.', 'a blurry photo of the {}.', 'a black and white photo of the {}.', 'a low contrast photo of the {}.', 'a high contrast photo of the {}.', 'a bad photo of the {}.', 'a good photo of the {}.', 'a photo of the small {}.', 'a photo of the big {}.']
inet_t = [t("{}") for t in z.OPENAI_IMAGENET_TEMPLATES]
inet_names = list(z.IMAGENET_CLASSNAMES)
assert len(inet_names) == 1000 and len(ResNet18_Weights.IMAGENET1K_V1.meta["categories"]) == 1000
dump("imagenet", inet_names, inet_t, "class names and 80 templates: open_clip.zero_shot_metadata (OpenAI CLIP's prompt-engineered ImageNet names; 'missile' and 'sunglasses' occur twice there, as in CLIP); label order = ILSVRC synset order as torchvision", unique=False)
dump("cifar10", ['airplane','automobile','bird','cat','deer','dog','frog','horse','ship','truck'], cifar_t, "torchvision CIFAR10 label order; templates: OpenAI CLIP data/prompts.md")
c100 = "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm".split()
assert len(c100) == 100 and c100 == sorted(c100)
c100 = [c.replace("_", " ") for c in c100]
elevater_c100 = ['chimpanzee','trout','skunk','spider','chair','tank','keyboard','man','whale','lobster','house','beetle','bear','shrew','bottle','cup','bus','orange','sea','oak tree','bed','tulip','rabbit','skyscraper','apple','maple tree','pine tree','snail','pear','bridge','train','mountain','caterpillar','crocodile','snake','kangaroo','dolphin','cattle','raccoon','mushroom','hamster','bowl','lamp','rocket','pickup truck','wolf','worm','otter','sunflower','leopard','ray','lawn mower','motorcycle','boy','fox','palm tree','cloud','dinosaur','turtle','forest','couch','poppy','rose','bee','girl','clock','can','table','road','orchid','streetcar','squirrel','crab','butterfly','tractor','beaver','willow tree','camel','plain','mouse','elephant','flatfish','sweet pepper','plate','television','aquarium fish','wardrobe','seal','lizard','cockroach','porcupine','woman','possum','baby','tiger','telephone','shark','lion','castle','bicycle']
assert set(elevater_c100) == set(c100)
dump("cifar100", c100, cifar_t, "torchvision CIFAR100 fine-label order (alphabetical), underscores as spaces; templates: OpenAI CLIP data/prompts.md")
food = "apple_pie baby_back_ribs baklava beef_carpaccio beef_tartare beet_salad beignets bibimbap bread_pudding breakfast_burrito bruschetta caesar_salad cannoli caprese_salad carrot_cake ceviche cheese_plate cheesecake chicken_curry chicken_quesadilla chicken_wings chocolate_cake chocolate_mousse churros clam_chowder club_sandwich crab_cakes creme_brulee croque_madame cup_cakes deviled_eggs donuts dumplings edamame eggs_benedict escargots falafel filet_mignon fish_and_chips foie_gras french_fries french_onion_soup french_toast fried_calamari fried_rice frozen_yogurt garlic_bread gnocchi greek_salad grilled_cheese_sandwich grilled_salmon guacamole gyoza hamburger hot_and_sour_soup hot_dog huevos_rancheros hummus ice_cream lasagna lobster_bisque lobster_roll_sandwich macaroni_and_cheese macarons miso_soup mussels nachos omelette onion_rings oysters pad_thai paella pancakes panna_cotta peking_duck pho pizza pork_chop poutine prime_rib pulled_pork_sandwich ramen ravioli red_velvet_cake risotto samosa sashimi scallops seaweed_salad shrimp_and_grits spaghetti_bolognese spaghetti_carbonara spring_rolls steak strawberry_shortcake sushi tacos takoyaki tiramisu tuna_tartare waffles".split()
assert len(food) == 101 and food == sorted(food), len(food)
dump("food101", [f.replace("_", " ") for f in food], ['a photo of {}, a type of food.'], "Food-101 meta/classes.txt order (alphabetical, as torchvision), underscores as spaces; template: OpenAI CLIP data/prompts.md")
dump("stl10", ['airplane','bird','car','cat','deer','dog','horse','monkey','ship','truck'], ['a photo of a {}.', 'a photo of the {}.'], "STL-10 class_names.txt order (as torchvision); templates: OpenAI CLIP data/prompts.md")
dump("mnist", [str(i) for i in range(10)], ['a photo of the number: "{}".'], "digits 0-9; template: OpenAI CLIP data/prompts.md")
dump("fashion-mnist", ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'],
     ['a photo of a {}.', 'a black and white photo of a {}.', 'a low resolution photo of a {}.', 'a photo of the {}, a type of clothing.', 'a grayscale photo of a {}.'],
     "Fashion-MNIST label order (0 T-shirt/top ... 9 Ankle boot; 'T-shirt/top' shortened to 't-shirt'); templates: written for vlkd (CLIP has none for this set)")
