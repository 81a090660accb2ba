// placeholder until the mount tests land
