"""People's access to the hub: hashed API tokens (django-rest-knox) and throttling of failed logins
(django-axes) and failed token authentication."""
