"""The wizard's questions (questionary); each wrong answer is refused with its reason and
the question asked again."""
from __future__ import annotations

from . import render
from .oses import OPERATING_SYSTEMS, matching_images

OTHER_IMAGE = "__other__"
MAX_LISTED_IMAGES = 15


class Questions:

    def __init__(self) -> None:
        import questionary
        self.q = questionary

    def cloud(self, default: str) -> str:
        choices = [self.q.Choice("OpenStack (native API: Nova, Glance, Neutron)", value="openstack"),
                   self.q.Choice("EC2 (AWS, or a cloud's EC2-compatible API)", value="ec2")]
        return self.q.select("Cloud API of the master and the workers:", choices=choices,
                             default=next(c for c in choices if c.value == default)).unsafe_ask()

    def operating_system(self, batch: str) -> str:
        """Only the operating systems a ``batch`` cluster can run on are offered."""
        choices = [self.q.Choice(OPERATING_SYSTEMS[os_id].label_for(batch), value=os_id)
                   for os_id in render.os_ids_for(batch)]
        return self.q.select("Operating system of the master and the workers:",
                             choices=choices).unsafe_ask()

    def image(self, os_id: str, images, cloud) -> str:
        found = matching_images(os_id, [(i.image_id, i.name) for i in images])
        choices = [self.q.Choice(f"{name}  ({image_id})", value=image_id)
                   for image_id, name in found[:MAX_LISTED_IMAGES]]
        choices.append(self.q.Choice("Other image: type its id", value=OTHER_IMAGE))
        label = OPERATING_SYSTEMS[os_id].label
        if not found:
            print(f"No image in this cloud has a name that looks like {label}.")
        choice = self.q.select(f"Image for the {label} master and workers:",
                               choices=choices).unsafe_ask()
        if choice != OTHER_IMAGE:
            return choice

        def check(text: str):
            text = text.strip()
            problem = cloud.image_id_problem(text)
            if problem:
                return problem
            if cloud.find_image(text) is None:
                return f"{text}: no such available image in this cloud"
            return True

        return self.q.text("Image id:", validate=check,
                           validate_while_typing=False).unsafe_ask().strip()

    def cluster_name(self, default: str) -> str:
        def check(text: str):
            return True if render.CLUSTER_NAME.fullmatch(text) else render.CLUSTER_NAME_RULE
        return self.q.text("Cluster name:", default=default, validate=check,
                           validate_while_typing=False).unsafe_ask()

    def embed_credentials(self, default: bool) -> bool:
        return self.q.confirm("Embed the cloud credentials in the master (needed on OpenStack; "
                              "on AWS prefer an instance role)?", default=default).unsafe_ask()

    def flavour_family(self, flavour: str, smaller: str, default: bool) -> bool:
        return self.q.confirm(
            f"The cloud offers smaller sizes of {flavour}: {smaller}.  Let elastiq launch them "
            f"too (largest first), so that a few small jobs do not keep a whole {flavour} "
            "(lower cost; jobs may wait a little longer)?",
            default=default).unsafe_ask()

    def confirm(self, message: str) -> bool:
        return self.q.confirm(message, default=True).unsafe_ask()
