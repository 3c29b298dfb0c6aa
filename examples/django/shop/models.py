"""The shop's one model."""

from django.db import models


class Customer(models.Model):
    """Someone who signed up."""

    email = models.EmailField(unique=True)
