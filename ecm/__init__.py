"""ecm: the wizard that writes the master user-data of an elastiq cluster.

``ecm.conf`` (parsed by :mod:`ecm.conf`) and the answers of the wizard (:mod:`ecm.wizard`) become
an :class:`ecm.render.Answers`; :mod:`ecm.render` turns it, without any I/O, into the master and
worker user-data.  :mod:`ecm.clouds` is how it talks to a cloud (:mod:`ecm.cloud_ec2`: through elastiq's EC2
adapter); :mod:`ecm.source`
decides how the master gets exactly this ecm's elastiq (:mod:`ecm.wheel` makes its wheel),
:mod:`ecm.checks` what is checked before anything is written.
"""
